/**
 * The defaults of every setting (`loadConfig` in mod.ts reads the environment over them; the
 * table of variables in variables.ts shows them).
 * @module
 */
import type { CodecDeviceChoice, DeviceChoice } from "./devices.ts";
import { KV_DEFAULTS } from "./kv_defaults.ts";

export { KV_DEFAULTS };

export const DEFAULTS = {
  natsUrl: "nats://127.0.0.1:4222",
  host: "127.0.0.1",
  port: 8080,
  threads: 1,
  prefillGroups: "auto" as number | "auto",
  device: "cpu" as DeviceChoice,
  codecDevice: "auto" as CodecDeviceChoice,
  kv: KV_DEFAULTS,
  decodeMaxBlocks: 65_536,
  decodeMaxBatch: 16,
  canaryRate: 0,
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
