/**
 * The prefill → decode hand-off contract: every call of every side, and how failure travels.
 * Services import their message types from here and nowhere else.
 *
 * One completion, in order:
 *   1. gateway  → decode        `kvrelay.decode.open` (queue)        DecodeOpenRequest → DecodeOpenReply
 *        decode reserves blocks for the request (its `kvTokens` estimate plus `maxTokens` per
 *        head) or refuses with `unavailable` before any work is done, and names its instance
 *        subjects (ingest, control). The request names the gateway's token subject
 *        (`kvrelay.tokens.<128 random bits>`) and a per-request `tokenKey`; decode signs every
 *        token event with it (step 5). From open to the last event, decode publishes a
 *        `heartbeat` on the token subject every `KVRELAY_HEARTBEAT_MS`.
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
 *        the first token is the one prefill sampled), each with an HMAC of the subject and body
 *        under `tokenKey` in the `Kvrelay-Mac` header (shared/nats/event_mac.ts). The last event
 *        is `done` or `error`. Prefill's reply (2) carries `usage.kv`, with the hand-off's time
 *        and bytes.
 *   6. gateway → decode <control> `{ op: "cancel", requestId }` when the client goes away or
 *        a stop string ends the text; `{ op: "probe", requestId }` when the token subject has been
 *        silent too long (the reply says whether decode still holds the request).
 *   Each prefill node's compression is also a service of its own: `kvrelay.compression.<id>.status`.
 *   gateway → every instance `$SRV.STATS.<service>` (many replies): the NATS micro-service stats,
 *        where the first endpoint's `data` carries the instance's Prometheus metrics
 *        (`MetricsReport`); the gateway's `GET /metrics` merges them with its own.
 *
 * Every call is declared once in `CALLS` (subject, request check, reply check) and every event
 * in `EVENTS`; the compiler holds each check to its interface in both directions. A sender
 * builds the typed request; a receiver parses the bytes once with `parseBody`
 * (shared/nats/call.ts) and holds exactly the declared shape.
 *
 * Deadline: the gateway gives each request one deadline (`KVRELAY_REQUEST_TIMEOUT_MS`) for
 * everything before generation; every request of steps 1, 2 and 4 carries the time left in the
 * `Kvrelay-Timeout` header (shared/nats/deadline.ts) and each hop waits only that long.
 * Generation itself is bounded by liveness: heartbeats and tokens, not a clock.
 *
 * Failure: every request above may fail with a `KvrelayError` (shared/errors.ts) carried in
 * the service-error headers; a body that is not JSON or fails its check is `bad_request` (400)
 * naming the field; a missing or corrupt chunk or bundle is `corrupt_bundle` and fails
 * the whole request (never wrong tokens); a decode slot whose transfer does not commit within
 * the deadline is released and reports `timeout` on the token subject; a full decode refuses
 * `open` (or the commit, when the real KV needs more than was reserved) with `unavailable`. A
 * token subject silent for `KVRELAY_LIVENESS_MS` makes the gateway probe decode's control
 * subject: no responder, no reply, or `held: false` is `unavailable` (503), and a request that
 * has not streamed a token yet runs again from step 1 (prefill and compression are
 * idempotent). A gap in token `seq` (a heartbeat carries the next `seq` without taking it), or
 * a reply that fails its check, is treated by the gateway as `corrupt_bundle`; a token event
 * without a valid MAC is dropped unseen. Who may publish and subscribe to each subject is in
 * shared/nats/permissions.ts; the broker refuses the rest.
 * @module
 */
import type { CodecName } from "../codec/traits.ts";
import { CODECS } from "../codec/traits.ts";
import {
  anyObject,
  arr,
  bool,
  type Check,
  type Checked,
  either,
  int,
  invalid,
  nullable,
  num,
  obj,
  oneOf,
  optional,
  str,
  tagged,
} from "../nats/validate.ts";

export const SUBJECTS = {
  prefillRun: "kvrelay.prefill.run",
  /** Text or chat turns to token ids, and back, with the served model's tokenizer (queue). */
  prefillTokenize: "kvrelay.prefill.tokenize",
  prefillDetokenize: "kvrelay.prefill.detokenize",
  decodeOpen: "kvrelay.decode.open",
  compressionStatus: (instance: string) => `kvrelay.compression.${instance}.status`,
  ingest: (service: string, instance: string) => `kvrelay.${service}.${instance}.ingest`,
  control: (service: string, instance: string) => `kvrelay.${service}.${instance}.control`,
  /** A request's token subject: only the gateway subscribes, only decode publishes. */
  tokens: (id: string) => `kvrelay.tokens.${id}`,
  /** Every instance of a service answers with its stats (NATS micro-service protocol). */
  serviceStats: (service: string) => `$SRV.STATS.${service}`,
} as const;

/** What each subject that a message names must look like (no wildcards, no other namespace). */
export const SUBJECT_PATTERNS = {
  ingest: /^kvrelay\.decode\.[A-Za-z0-9]{1,64}\.ingest$/,
  control: /^kvrelay\.decode\.[A-Za-z0-9]{1,64}\.control$/,
  /** 128 random bits in hex: not guessable, so not forgeable without reading decode.open. */
  tokens: /^kvrelay\.tokens\.[0-9a-f]{32}$/,
} as const;

export const SERVICE_NAMES = ["prefill", "compression", "decode"] as const;

export type EvictionPolicy = "kvcompress" | "uniform" | "recency";

/** Per-request KV settings, already validated and filled from defaults. */
export interface KvSettings {
  codec: CodecName;
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
  /** KVs every (layer, KV head) keeps at least when evicting (at least one block). */
  headFloor: number;
}

export interface SamplingParams {
  maxTokens: number;
  /** The client set `maxTokens`: a prompt that leaves no room for them is refused, not cut short. */
  maxTokensAsked?: boolean;
  temperature: number;
  topP: number;
  /** vLLM's: sample among the k most likely tokens only; absent = all. */
  topK?: number;
  /** vLLM's: drop tokens less likely than `minP` × the most likely one; absent = none. */
  minP?: number;
  seed?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  /** vLLM's; 1 = off. */
  repetitionPenalty?: number;
  /** Token id → bias; -100 bans. */
  logitBias?: { id: number; bias: number }[];
  /** Alternatives reported with each token's log-probability; absent = none reported. */
  logprobs?: number;
  stopTokenIds?: number[];
  minTokens?: number;
  /** Generate `maxTokens` tokens: EOS does not end the sequence (vLLM's ignore_eos). */
  ignoreEos?: boolean;
}

/** A token's log-probability and its most likely alternatives, as decode reports them. */
export interface TokenLogprobs {
  logprob: number;
  /** Most likely first; `text` is the alternative's text after the same previous token. */
  top: { id: number; text: string; logprob: number }[];
}

export interface DecodeOpenRequest {
  requestId: string;
  sampling: SamplingParams;
  tokenSubject: string;
  /** 256-bit key (base64url) under which decode signs every token event of this request. */
  tokenKey: string;
  /**
   * The gateway's estimate of the KVs per head the prompt leaves after eviction; decode reserves
   * blocks for these plus `sampling.maxTokens` at open (0 when absent). The commit then
   * reserves the exact need.
   */
  kvTokens?: number;
  /**
   * The request's KV settings: with eviction on (`evictionRate` > 1 or `maxCacheTokens`),
   * decode keeps evicting while it generates, so the budget holds for the whole generation.
   */
  kv?: KvSettings;
}
export interface DecodeOpenReply {
  ingest: string;
  control: string;
  instance: string;
}

/** A chat turn as OpenAI sends it (tool fields under OpenAI's, and templates', names). */
export interface ChatMessage {
  role: string;
  content: string;
  tool_calls?: { id: string; type: "function"; function: { name: string; arguments: string } }[];
  tool_call_id?: string;
}

/**
 * One completion as the gateway runs it: the prompt (text, token ids or chat turns), sampling
 * and KV settings. Prefill gets it as it is, with where to send the KV.
 */
export interface CompletionRequest {
  requestId: string;
  prompt?: string;
  promptIds?: number[];
  /** Chat turns, rendered by prefill with the model's chat template. */
  messages?: ChatMessage[];
  sampling: SamplingParams;
  kv: KvSettings;
}

export interface PrefillRunRequest extends CompletionRequest {
  /** Decode's ingest subject (from DecodeOpenReply). */
  decodeIngest: string;
}
/** vLLM's `/tokenize`: `prompt` or `messages` (rendered with the chat template). */
export interface TokenizeRequest {
  prompt?: string;
  messages?: ChatMessage[];
  /** Add BOS to a `prompt` (default true, as prefill does). */
  addSpecialTokens?: boolean;
}
export interface TokenizeReply {
  tokens: number[];
  maxModelLen: number;
}
export interface DetokenizeRequest {
  tokens: number[];
}
export interface DetokenizeReply {
  prompt: string;
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
  /**
   * The prompt's last token: the first generated token's text is rendered after it, so a word
   * that starts the completion keeps its leading space (as `generate` gives it).
   */
  promptLastToken?: number;
  /** The prompt's tokens: decode's repetition penalty, and what its accuracy canary re-prefills (KVRELAY_CANARY_RATE). */
  promptIds?: number[];
  /** The first token's log-probabilities, when the request asked for them. */
  firstLogprobs?: { logprob: number; top: { id: number; logprob: number }[] };
}
export interface DecodeCommitReply {
  decodeKvMs: number;
  blocks: number;
}

/** `usage.kv` of every completion, and `kv` of `generate --json`. */
export interface KvUsage {
  codec: CodecName;
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
  head_floor: number;
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
  /** Most KVs any (layer, KV head) held at any step of decode (set once decode is done). */
  peak_cache_tokens?: number;
  /** Most blocks the sequence held in decode's block store at any step. */
  peak_blocks?: number;
  /** Evictions decode made while generating (each may drop blocks of many heads). */
  decode_evictions?: number;
  /** The accuracy canary's verdict, on a sampled request (KVRELAY_CANARY_RATE). */
  canary?: CanaryUsage;
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

/**
 * What the uncompressed KV would have said: each generated token's next-token distribution
 * given the compressed KV (what the client got) against the same tokens teacher-forced on
 * the whole prompt's KV, prefilled again.
 */
export interface CanaryUsage {
  /**
   * Steps compared, one a decode step: every generated token after the first (which prefill
   * sampled before eviction), and the step that chose EOS when one ended the sequence.
   */
  tokens: number;
  /** Share of steps whose most likely next token is the same. */
  top1_agreement: number;
  /** Mean KL(uncompressed ‖ compressed) of the next-token distributions, in nats. */
  mean_kl: number;
  /** Milliseconds the shadow run took. */
  ms: number;
}

/** What decode measured of a finished sequence's KV, carried by its `done` event. */
export interface DecodeKvReport {
  peak_cache_tokens: number;
  peak_blocks: number;
  decode_evictions: number;
  canary?: CanaryUsage;
}

export type TokenEvent =
  | { type: "token"; seq: number; id: number; text: string; logprobs?: TokenLogprobs }
  | {
    type: "done";
    seq: number;
    finishReason: "stop" | "length";
    completionTokens: number;
    generateMs: number;
    kv?: DecodeKvReport;
  }
  | { type: "error"; seq: number; code: string; message: string }
  /** Decode still holds the request; `seq` is the next event's, not taken by this one. */
  | { type: "heartbeat"; seq: number };

/** One metric of a service's report, in the shape of prom-client's `Registry.getMetricsAsJSON()`. */
export interface MetricSnapshot {
  name: string;
  help: string;
  type: "counter" | "gauge" | "histogram";
  /** How the gateway merges instances' values of one label set (prom-client's aggregators). */
  aggregator: "sum" | "first" | "min" | "max" | "average" | "omit";
  values: {
    value: number;
    labels: Record<string, string | number>;
    /** A histogram's series: `<name>_bucket`, `<name>_sum` or `<name>_count`. */
    metricName?: string;
  }[];
}

/** What a service puts in its `$SRV.STATS` data for `GET /metrics`. */
export interface MetricsReport {
  metrics: MetricSnapshot[];
}

/** The fields of a `$SRV.STATS` reply the gateway reads. */
export interface ServiceStatsReply {
  name: string;
  id: string;
  /** One per endpoint; the first endpoint's `data` holds the service's data (e.g. a `MetricsReport`). */
  endpoints: { data?: Record<string, unknown> | null }[];
}

export type ControlMessage = { op: "cancel" | "probe"; requestId: string };
export interface ControlReply {
  /** `cancel`: the request was generating and stopped. */
  cancelled: boolean;
  /** Decode held the request (open, receiving its KV, or generating) when the message came. */
  held: boolean;
}

// ---------------------------------------------------------------- checks, one per message
// Bounds are what a well-behaved peer can send; the gateway's API limits are tighter.

const MAX_TOKENS = 1 << 22;
const requestId = str({ max: 200, pattern: /^[A-Za-z0-9_.:-]+$/ });
const tokenId = int(0, 2 ** 31 - 1);
const nonNegative = num(0, Number.MAX_VALUE);
const EVICTION_POLICIES = ["kvcompress", "uniform", "recency"] as const;

const logprob = num(-1e9, 1);
const samplingParams = obj({
  maxTokens: int(1, MAX_TOKENS),
  maxTokensAsked: optional(bool),
  temperature: num(0, 100),
  topP: num(0, 1),
  topK: optional(int(1, 2 ** 31 - 1)),
  minP: optional(num(0, 1)),
  seed: optional(int(-(2 ** 53) + 1, 2 ** 53 - 1)),
  presencePenalty: optional(num(-2, 2)),
  frequencyPenalty: optional(num(-2, 2)),
  repetitionPenalty: optional(num(1e-6, 1e6)),
  logitBias: optional(arr(obj({ id: tokenId, bias: num(-100, 100) }), { max: 1 << 16 })),
  logprobs: optional(int(0, 20)),
  stopTokenIds: optional(arr(tokenId, { max: 1 << 12 })),
  minTokens: optional(int(0, MAX_TOKENS)),
  ignoreEos: optional(bool),
});
const stepLogprobs = obj({ logprob, top: arr(obj({ id: tokenId, logprob }), { max: 20 }) });
const tokenLogprobsCheck = obj({
  logprob,
  top: arr(obj({ id: tokenId, text: str({ min: 0, max: 4096 }), logprob }), { max: 20 }),
});

const kvSettings = obj({
  codec: oneOf(CODECS),
  errorBound: nonNegative,
  errorMode: oneOf(["rel", "abs"]),
  indexShare: either(int(1, 1 << 16), oneOf(["auto"])),
  frames: oneOf(["head", "layer"]),
  eviction: oneOf(EVICTION_POLICIES),
  evictionRate: num(1, 1e9),
  maxCacheTokens: optional(int(1, MAX_TOKENS)),
  protectedWindow: int(0, MAX_TOKENS),
  observationWindow: int(1, 1 << 16),
  maxPool: int(0, 1 << 16),
  sink: int(0, MAX_TOKENS),
  blockSize: int(1, 1 << 16),
  headFloor: int(0, MAX_TOKENS),
});

const canaryUsage = obj({
  tokens: int(0, MAX_TOKENS),
  top1_agreement: num(0, 1),
  mean_kl: nonNegative,
  ms: nonNegative,
});

const decodeKvReport = obj({
  peak_cache_tokens: int(0, MAX_TOKENS),
  peak_blocks: int(0, 2 ** 40),
  decode_evictions: int(0, 2 ** 40),
  canary: optional(canaryUsage),
});

const kvUsage = obj({
  codec: oneOf(CODECS),
  codec_family: oneOf(["max-ratio", "fast", "baseline"]),
  encoder: str({ max: 64 }),
  lossless: bool,
  error_bound: nullable(nonNegative),
  error_mode: nullable(oneOf(["rel", "abs"])),
  index_share: nullable(either(int(1, 1 << 16), oneOf(["auto"]))),
  frames: oneOf(["head", "layer"]),
  eviction: oneOf([...EVICTION_POLICIES, "off"]),
  eviction_rate: num(1, 1e9),
  max_cache_tokens: nullable(int(1, MAX_TOKENS)),
  protected_window: int(0, MAX_TOKENS),
  observation_window: int(1, 1 << 16),
  max_pool: int(0, 1 << 16),
  block_size: int(1, 1 << 16),
  head_floor: int(0, MAX_TOKENS),
  kept_fraction: num(0, 1),
  kept_fraction_per_layer: arr(num(0, 1), { max: 1 << 16 }),
  raw_basis: oneOf(["fp16"]),
  raw_bytes: nonNegative,
  wire_bytes: nonNegative,
  ratio: nonNegative,
  peak_cache_tokens: optional(int(0, MAX_TOKENS)),
  peak_blocks: optional(int(0, 2 ** 40)),
  decode_evictions: optional(int(0, 2 ** 40)),
  canary: optional(canaryUsage),
  ms: obj({
    prefill: nonNegative,
    evict: nonNegative,
    encode: nonNegative,
    transfer: nonNegative,
    decode_kv: nonNegative,
    handoff: nonNegative,
    generate: nonNegative,
  }),
});

const decodeOpenRequest = obj({
  requestId,
  sampling: samplingParams,
  tokenSubject: str({ max: 64, pattern: SUBJECT_PATTERNS.tokens }),
  tokenKey: str({ min: 43, max: 43, pattern: /^[A-Za-z0-9_-]+$/ }),
  kvTokens: optional(int(0, MAX_TOKENS)),
  kv: optional(kvSettings),
});

const decodeOpenReply = obj({
  ingest: str({ max: 128, pattern: SUBJECT_PATTERNS.ingest }),
  control: str({ max: 128, pattern: SUBJECT_PATTERNS.control }),
  instance: str({ max: 64, pattern: /^[A-Za-z0-9]+$/ }),
});

const toolCall = obj({
  id: str({ min: 0, max: 256 }),
  type: oneOf(["function"]),
  function: obj({ name: str({ max: 256 }), arguments: str({ min: 0, max: 1 << 20 }) }),
});
const chatMessage = obj({
  role: str({ max: 32 }),
  content: str({ min: 0, max: 1 << 24 }),
  tool_calls: optional(arr(toolCall, { max: 256 })),
  tool_call_id: optional(str({ min: 0, max: 256 })),
});
const prefillRunFields = obj({
  requestId,
  prompt: optional(str({ min: 0, max: 1 << 24 })),
  promptIds: optional(arr(tokenId, { min: 1, max: MAX_TOKENS })),
  messages: optional(arr(chatMessage, { min: 1, max: 1 << 16 })),
  sampling: samplingParams,
  kv: kvSettings,
  decodeIngest: str({ max: 128, pattern: SUBJECT_PATTERNS.ingest }),
});
const prefillRunRequest: Check<Checked<typeof prefillRunFields>> = (v, path) => {
  const r = prefillRunFields(v, path);
  if (r.prompt === undefined && r.promptIds === undefined && r.messages === undefined) {
    throw invalid(`${path}.prompt`, "or promptIds or messages is required");
  }
  return r;
};

const tokenizeRequest = obj({
  prompt: optional(str({ min: 0, max: 1 << 24 })),
  messages: optional(arr(chatMessage, { min: 1, max: 1 << 16 })),
  addSpecialTokens: optional(bool),
});
const tokenizeReply = obj({ tokens: arr(tokenId, { max: MAX_TOKENS }), maxModelLen: int(1, 2 ** 31 - 1) });
const detokenizeRequest = obj({ tokens: arr(tokenId, { max: MAX_TOKENS }) });
const detokenizeReply = obj({ prompt: str({ min: 0, max: 1 << 26 }) });

const prefillRunReply = obj({
  requestId,
  promptIds: arr(tokenId, { min: 1, max: MAX_TOKENS }),
  firstToken: tokenId,
  kv: kvUsage,
});

const decodeCommit = obj({
  requestId,
  firstToken: tokenId,
  nPos: int(1, MAX_TOKENS),
  promptLastToken: optional(tokenId),
  promptIds: optional(arr(tokenId, { min: 1, max: MAX_TOKENS })),
  firstLogprobs: optional(stepLogprobs),
});
const decodeCommitReply = obj({ decodeKvMs: nonNegative, blocks: int(0, 2 ** 40) });

const tokenEvent = tagged("type", {
  token: obj({
    type: oneOf(["token"]),
    seq: int(0, MAX_TOKENS),
    id: tokenId,
    text: str({ min: 0, max: 4096 }),
    logprobs: optional(tokenLogprobsCheck),
  }),
  done: obj({
    type: oneOf(["done"]),
    seq: int(0, MAX_TOKENS),
    finishReason: oneOf(["stop", "length"]),
    completionTokens: int(0, MAX_TOKENS),
    generateMs: nonNegative,
    kv: optional(decodeKvReport),
  }),
  error: obj({
    type: oneOf(["error"]),
    seq: int(0, MAX_TOKENS),
    code: str({ max: 64 }),
    message: str({ min: 0, max: 4096 }),
  }),
  heartbeat: obj({ type: oneOf(["heartbeat"]), seq: int(0, MAX_TOKENS) }),
});

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const labelValues: Check<Record<string, string | number>> = (v, path) => {
  const o = anyObject(v, path);
  const out: Record<string, string | number> = {};
  const keys = Object.keys(o);
  if (keys.length > 16) throw invalid(path, "has more than 16 labels");
  for (const k of keys) {
    if (!/^[a-zA-Z_][a-zA-Z0-9_]{0,63}$/.test(k)) throw invalid(`${path}.${k}`, "is not a label name");
    const val = o[k];
    out[k] = typeof val === "number" ? num(-Number.MAX_VALUE, Number.MAX_VALUE)(val, `${path}.${k}`) : str({
      min: 0,
      max: 256,
    })(val, `${path}.${k}`);
  }
  return out;
};
const metricSnapshot = obj({
  name: str({ max: 128, pattern: METRIC_NAME }),
  help: str({ min: 0, max: 1024 }),
  type: oneOf(["counter", "gauge", "histogram"]),
  aggregator: oneOf(["sum", "first", "min", "max", "average", "omit"]),
  values: arr(
    obj({
      value: num(-Number.MAX_VALUE, Number.MAX_VALUE),
      labels: labelValues,
      metricName: optional(str({ max: 160, pattern: METRIC_NAME })),
    }),
    { max: 10_000 },
  ),
});
const metricsReport = obj({ metrics: arr(metricSnapshot, { max: 1000 }) });
const serviceStatsReply = obj({
  name: str({ max: 64 }),
  id: str({ max: 64 }),
  endpoints: arr(obj({ data: optional(nullable(anyObject)) }), { max: 64 }),
});

const controlMessage = obj({ op: oneOf(["cancel", "probe"]), requestId });
const controlReply = obj({ cancelled: bool, held: bool });
const empty = (_v: unknown, _path: string): Record<never, never> => ({});

// ---------------------------------------------------------------- calls and events

/**
 * One NATS request/reply: its subject (a function for per-instance subjects), and the check
 * each side runs on what it receives.
 */
export interface Call<Req, Rep> {
  readonly name: string;
  readonly request: Check<Req>;
  readonly reply: Check<Rep>;
}

function call<Req, Rep>(name: string, request: Check<Req>, reply: Check<Rep>): Call<Req, Rep> {
  return { name, request, reply };
}

/** Every request/reply of the hand-off, by the step of the header above. */
export const CALLS = {
  /** 1. `kvrelay.decode.open` */
  decodeOpen: call<DecodeOpenRequest, DecodeOpenReply>("decode.open", decodeOpenRequest, decodeOpenReply),
  /** 2. `kvrelay.prefill.run` */
  prefillRun: call<PrefillRunRequest, PrefillRunReply>("prefill.run", prefillRunRequest, prefillRunReply),
  /** `kvrelay.prefill.tokenize` and `.detokenize`: the gateway's /tokenize and /detokenize. */
  prefillTokenize: call<TokenizeRequest, TokenizeReply>("prefill.tokenize", tokenizeRequest, tokenizeReply),
  prefillDetokenize: call<DetokenizeRequest, DetokenizeReply>(
    "prefill.detokenize",
    detokenizeRequest,
    detokenizeReply,
  ),
  /** 4. the commit on decode's ingest subject (the chunks themselves are checked by BundleReceiver). */
  decodeCommit: call<DecodeCommit, DecodeCommitReply>("decode.commit", decodeCommit, decodeCommitReply),
  /** 6. decode's control subject. */
  decodeControl: call<ControlMessage, ControlReply>("decode.control", controlMessage, controlReply),
  /** `kvrelay.compression.<id>.status`: no body; the reply is the node's stats. */
  compressionStatus: call<Record<never, never>, Record<string, unknown>>(
    "compression.status",
    empty,
    anyObject,
  ),
  /** `$SRV.STATS.<service>`, answered by every instance (`requestMany`). */
  serviceStats: call<Record<never, never>, ServiceStatsReply>("service.stats", empty, serviceStatsReply),
} as const;

/** The metrics in a `ServiceStatsReply` endpoint's `data`. */
export const METRICS_REPORT: Check<MetricsReport> = metricsReport;

/** Messages without a reply. */
export const EVENTS = {
  /** 5. on the gateway's token subject, signed (`Kvrelay-Mac`). */
  token: { name: "token event", check: tokenEvent as Check<TokenEvent> },
} as const;

// Each check gives exactly its interface: a field added to one and not the other fails `deno check`.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Exact<A, B> = Same<A, B> extends true ? Same<keyof A, keyof B> : false;
/** Fails `deno check` where an entry is not `true`. */
type AllTrue<T extends true[]> = T;
type _ExactChecks = AllTrue<[
  Exact<Checked<typeof decodeOpenRequest>, DecodeOpenRequest>,
  Exact<Checked<typeof decodeOpenReply>, DecodeOpenReply>,
  Exact<Checked<typeof prefillRunRequest>, PrefillRunRequest>,
  Exact<Checked<typeof prefillRunReply>, PrefillRunReply>,
  Exact<Checked<typeof tokenizeRequest>, TokenizeRequest>,
  Exact<Checked<typeof chatMessage>, ChatMessage>,
  Exact<Checked<typeof tokenizeReply>, TokenizeReply>,
  Exact<Checked<typeof detokenizeRequest>, DetokenizeRequest>,
  Exact<Checked<typeof detokenizeReply>, DetokenizeReply>,
  Exact<Checked<typeof decodeCommit>, DecodeCommit>,
  Exact<Checked<typeof decodeCommitReply>, DecodeCommitReply>,
  Exact<Checked<typeof kvSettings>, KvSettings>,
  Exact<Checked<typeof kvUsage>, KvUsage>,
  Exact<Checked<typeof kvUsage>["ms"], KvUsage["ms"]>,
  Exact<Checked<typeof samplingParams>, SamplingParams>,
  Exact<Checked<typeof canaryUsage>, CanaryUsage>,
  Exact<Checked<typeof decodeKvReport>, DecodeKvReport>,
  Same<Checked<typeof tokenEvent>, TokenEvent>,
  Exact<Checked<typeof controlMessage>, ControlMessage>,
  Exact<Checked<typeof controlReply>, ControlReply>,
  Exact<Checked<typeof metricSnapshot>, MetricSnapshot>,
  Exact<Checked<typeof metricsReport>, MetricsReport>,
  Exact<Checked<typeof serviceStatsReply>, ServiceStatsReply>,
]>;
