/**
 * The defaults of every setting (`loadConfig` in mod.ts reads the environment over them; the
 * table of variables in variables.ts shows them).
 * @module
 */
import type { CodecDeviceChoice, DeviceChoice, KvDefaults } from "./mod.ts";

/** The per-request KV settings every service, tool and request starts from. */
export const KV_DEFAULTS: KvDefaults = {
  // The hand-off must beat sending fp16: the fast codec keeps up with the link where KVSort does
  // not, and at 1e-2 (relative) kvrelay-tiny's task accuracy is unchanged (arithmetic 97.5%,
  // multi-key 100%, passkey 100% to 2048 tokens; tests/bench/results/task_eval_fast_eb1e-2_r1.json).
  codec: "fast",
  errorBound: 1e-2,
  errorMode: "rel",
  indexShare: 8,
  evictionRate: 1,
  protectedWindow: 64,
  observationWindow: 32,
  // Neighbours of a high-scoring KV survive with it: at rate 4, passkey retrieval on
  // kvrelay-tiny goes from 27% without pooling to 79% with kernel 7 (tests/bench/README.md).
  maxPool: 7,
  sink: 4,
  blockSize: 16,
};

export const DEFAULTS = {
  natsUrl: "nats://127.0.0.1:4222",
  host: "127.0.0.1",
  port: 8080,
  threads: 1,
  device: "cpu" as DeviceChoice,
  codecDevice: "auto" as CodecDeviceChoice,
  kv: KV_DEFAULTS,
  decodeMaxBlocks: 65_536,
  decodeMaxBatch: 16,
  requestTimeoutMs: 120_000,
  maxBundleBytes: 512 * 1024 * 1024,
  maxTokensLimit: 4096,
  maxBodyBytes: 1024 * 1024,
  uploadQuotaBytes: 1024 * 1024 * 1024,
  fileTtlS: 30 * 24 * 3600,
  maxInflight: 64,
  heartbeatMs: 1000,
  livenessMs: 3000,
  sseKeepAliveMs: 10_000,
  completionAttempts: 3,
  batchConcurrency: 4,
  batchAckWaitMs: 30_000,
} as const;
