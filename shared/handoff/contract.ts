/**
 * The prefill → decode hand-off contract: every call of every side, and how failure travels.
 * Services import their message types from here and nowhere else.
 *
 * One completion, in order:
 *   1. gateway  → decode        `kvrelay.decode.open` (queue)        DecodeOpenRequest → DecodeOpenReply
 *        decode reserves a slot and names its instance subjects (ingest, control).
 *   2. gateway  → prefill       `kvrelay.prefill.run` (queue)        PrefillRunRequest → PrefillRunReply
 *   3. prefill node, in process: prefill runs the prompt; its compression evicts (all layers
 *        compete) and encodes layer by layer. Raw KV never leaves the node.
 *   4. prefill node → decode <ingest>: one encoded layer bundle per layer (bundle index =
 *        layer), each sent as soon as it is encoded, in chunks (shared/nats/transfer.ts), over
 *        the modelled link when one is set; then a commit with `DecodeCommit`, whose reply is
 *        `DecodeCommitReply`. Decode decodes each bundle as it lands, so encode, transfer and
 *        decode overlap.
 *   5. decode, on commit: every layer is in its block store; it starts generating and
 *        publishes `TokenEvent`s to the gateway's `tokenSubject` (seq 0, 1, 2, ... with no gaps;
 *        the first token is the one prefill sampled). The last event is `done` or `error`.
 *        Prefill's reply (2) carries `usage.kv`, with the hand-off's time and bytes.
 *   6. gateway → decode <control> `{ op: "cancel", requestId }` when the client goes away or
 *        a stop string ends the text.
 *   Each prefill node's compression is also a service of its own: `kvrelay.compression.<id>.status`.
 *
 * Failure: every request above may fail with a `KvrelayError` (shared/errors.ts) carried in
 * the service-error headers; a missing or corrupt chunk or bundle is `corrupt_bundle` and fails
 * the whole request (never wrong tokens); a decode slot whose transfer does not commit within
 * the request timeout is released and reports `timeout` on the token subject. A gap in token
 * `seq` is treated by the gateway as `corrupt_bundle`.
 * @module
 */
import type { CodecChoice } from "../config/mod.ts";

export const SUBJECTS = {
  prefillRun: "kvrelay.prefill.run",
  decodeOpen: "kvrelay.decode.open",
  compressionStatus: (instance: string) => `kvrelay.compression.${instance}.status`,
  ingest: (service: string, instance: string) => `kvrelay.${service}.${instance}.ingest`,
  control: (service: string, instance: string) => `kvrelay.${service}.${instance}.control`,
} as const;

export const SERVICE_NAMES = ["prefill", "compression", "decode"] as const;

export type EvictionPolicy = "kvcompress" | "uniform" | "recency";

/** Per-request KV settings, already validated and filled from defaults. */
export interface KvSettings {
  codec: CodecChoice;
  errorBound: number;
  errorMode: "rel" | "abs";
  indexShare: number | "auto";
  frames: "head" | "layer";
  eviction: EvictionPolicy;
  /** 1 = no eviction. */
  evictionRate: number;
  maxCacheTokens?: number;
  protectedWindow: number;
  observationWindow: number;
  /** Max-pool kernel over positions applied to the eviction metric (SnapKV); 0 or 1 = none. */
  maxPool: number;
  sink: number;
  blockSize: number;
}

export interface SamplingParams {
  maxTokens: number;
  temperature: number;
  topP: number;
  seed?: number;
}

export interface DecodeOpenRequest {
  requestId: string;
  sampling: SamplingParams;
  tokenSubject: string;
}
export interface DecodeOpenReply {
  ingest: string;
  control: string;
  instance: string;
}

export interface PrefillRunRequest {
  requestId: string;
  prompt?: string;
  promptIds?: number[];
  /** Chat turns, rendered by prefill with the model's chat template. */
  messages?: { role: string; content: string }[];
  sampling: SamplingParams;
  kv: KvSettings;
  /** Decode's ingest subject (from DecodeOpenReply). */
  decodeIngest: string;
}
export interface PrefillRunReply {
  requestId: string;
  promptIds: number[];
  firstToken: number;
  kv: KvUsage;
}

/** Commit body prefill node → decode. */
export interface DecodeCommit {
  requestId: string;
  firstToken: number;
  nPos: number;
}
export interface DecodeCommitReply {
  decodeKvMs: number;
  blocks: number;
}

/** `usage.kv` of every completion, and `kv` of `generate --json`. */
export interface KvUsage {
  codec: CodecChoice;
  /** `max-ratio` (kvsort, sz), `fast` (fixed-length blocks) or `baseline` (fp16, zstd, raw, KIVI). */
  codec_family: "max-ratio" | "fast" | "baseline";
  /** Where the frames were encoded: `cpu` or `webgpu`. */
  encoder: string;
  lossless: boolean;
  error_bound: number | null;
  error_mode: "rel" | "abs" | null;
  index_share: number | "auto" | null;
  frames: "head" | "layer";
  eviction: EvictionPolicy | "off";
  eviction_rate: number;
  max_cache_tokens: number | null;
  protected_window: number;
  observation_window: number;
  max_pool: number;
  block_size: number;
  /** Kept KVs / prompt KVs, over all layers and heads. */
  kept_fraction: number;
  kept_fraction_per_layer: number[];
  /** What `raw_bytes` counts: the prompt's KV as fp16, the bytes a deployment moves uncompressed. */
  raw_basis: "fp16";
  /** fp16 bytes of the whole prompt KV cache (K and V, all layers, 2 bytes a value). */
  raw_bytes: number;
  /** Bytes of the encoded bundles sent to decode. */
  wire_bytes: number;
  /** raw_bytes / wire_bytes: the ratio against sending the cache as fp16. */
  ratio: number;
  ms: {
    prefill: number;
    evict: number;
    encode: number;
    transfer: number;
    decode_kv: number;
    /** Wall time from the end of prefill to the KV being ready at decode (evict, encode, send, decode overlapped). */
    handoff: number;
    generate: number;
  };
}

export type TokenEvent =
  | { type: "token"; seq: number; id: number; text: string }
  | {
    type: "done";
    seq: number;
    finishReason: "stop" | "length";
    completionTokens: number;
    generateMs: number;
  }
  | { type: "error"; seq: number; code: string; message: string };

export type ControlMessage = { op: "cancel"; requestId: string };
