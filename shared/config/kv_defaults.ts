/**
 * The one table of default KV settings (codec, error bound, index sharing, eviction): the
 * services, the CLI, the benchmarks and the codec's own option defaults all read it. Kept
 * apart from the rest of the configuration so the codec can import it without the NATS client.
 * @module
 */
import type { KvSettings } from "../handoff/contract.ts";

/**
 * The per-request KV settings that have a default here (the contract's `KvSettings` lists and
 * explains them all); a type-only import, so the codec still loads none of the contract.
 */
export type KvDefaults = Omit<KvSettings, "frames" | "eviction" | "maxCacheTokens">;

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
  headFloor: 16,
};
