/**
 * Every environment variable kvrelay reads, in one table: its name, default and meaning. The
 * defaults come from `DEFAULTS`, so the table cannot drift from what `loadConfig` does; the
 * README's configuration table is `variablesMarkdown()` (a test holds them equal), and a
 * `KVRELAY_*` variable that is not in the table is reported at start (a typo would otherwise
 * be ignored without a word).
 * @module
 */
import { DEFAULTS, KV_DEFAULTS } from "./defaults.ts";

export interface EnvVariable {
  name: string;
  /** As text; "" when unset means off or derived (the meaning says which). */
  default: string;
  meaning: string;
  /** Who reads it. */
  by: "all" | "gateway" | "prefill" | "decode" | "batch" | "launcher" | "cli" | "tests";
}

const s = (v: unknown) => String(v);

export const VARIABLES: readonly EnvVariable[] = [
  // ---- where things are
  {
    name: "NATS_URL",
    default: "",
    by: "all",
    meaning: "use this NATS (with JetStream) instead of starting one",
  },
  { name: "KVRELAY_HOST", default: DEFAULTS.host, by: "gateway", meaning: "address the gateway listens on" },
  { name: "KVRELAY_PORT", default: s(DEFAULTS.port), by: "gateway", meaning: "port the gateway listens on" },
  {
    name: "KVRELAY_MODEL",
    default: "infra/model/kvrelay-tiny",
    by: "all",
    meaning: "model: a Hugging Face folder or a llama2.c .bin",
  },
  {
    name: "KVRELAY_TOKENIZER",
    default: "",
    by: "all",
    meaning: "tokenizer of a llama2.c .bin (or a tokenizer.json)",
  },
  {
    name: "KVRELAY_MODEL_NAME",
    default: "",
    by: "gateway",
    meaning: "model id served in /v1/models (default: the model's)",
  },
  { name: "KVRELAY_DATA_DIR", default: ".data", by: "launcher", meaning: "what must survive a restart" },
  {
    name: "KVRELAY_NATS_STORE_DIR",
    default: "<KVRELAY_DATA_DIR>/nats",
    by: "launcher",
    meaning: "JetStream's store when npm start runs NATS",
  },
  {
    name: "KVRELAY_NATS_PORT",
    default: "",
    by: "launcher",
    meaning: "port of the NATS npm start runs (default: a free one)",
  },
  {
    name: "KVRELAY_NATS_NKEY_DIR",
    default: "",
    by: "launcher",
    meaning: "with NATS_URL: <dir>/<role>.nk are the services' NATS seeds",
  },
  // ---- devices and threads
  {
    name: "KVRELAY_DEVICE",
    default: DEFAULTS.device,
    by: "all",
    meaning: "where the model runs: cpu, webgpu, auto",
  },
  {
    name: "KVRELAY_CODEC_DEVICE",
    default: DEFAULTS.codecDevice,
    by: "all",
    meaning: "where the codec runs: cpu, webgpu, auto, cuda (the fast codec on CUDA, the others on the CPU)",
  },
  {
    name: "KVRELAY_CUDA_LIB",
    default: "",
    by: "all",
    meaning:
      "with KVRELAY_CODEC_DEVICE=cuda: the library infra/cuda/build.sh built (default .cuda/libkvrelay_cuda.so)",
  },
  {
    name: "KVRELAY_CUDA_DEVICE",
    default: "0",
    by: "all",
    meaning:
      "with KVRELAY_CODEC_DEVICE=cuda: the CUDA device index (prefill and decode may use different GPUs)",
  },
  {
    name: "KVRELAY_GPU",
    default: "",
    by: "all",
    meaning:
      "use only this GPU (nvidia-smi's index), for WebGPU and CUDA; needs infra/gpu/build_gpu_select.sh",
  },
  {
    name: "KVRELAY_GPU_SELECT_LIST",
    default: "",
    by: "all",
    meaning: "1 with KVRELAY_GPU: list the GPUs in the order the index counts, on stderr",
  },
  { name: "KVRELAY_THREADS", default: s(DEFAULTS.threads), by: "all", meaning: "model runtime threads" },
  {
    name: "KVRELAY_CODEC_THREADS",
    default: "1",
    by: "all",
    meaning: "codec worker threads (1 = on the service's thread)",
  },
  // ---- the KV hand-off
  { name: "KVRELAY_CODEC", default: KV_DEFAULTS.codec, by: "prefill", meaning: "codec of the hand-off" },
  {
    name: "KVRELAY_ERROR_BOUND",
    default: s(KV_DEFAULTS.errorBound),
    by: "prefill",
    meaning: "codec error bound",
  },
  {
    name: "KVRELAY_ERROR_MODE",
    default: KV_DEFAULTS.errorMode,
    by: "prefill",
    meaning: "error bound: rel or abs",
  },
  {
    name: "KVRELAY_INDEX_SHARE",
    default: s(KV_DEFAULTS.indexShare),
    by: "prefill",
    meaning: "KVSort: heads sharing one sort index, or auto",
  },
  {
    name: "KVRELAY_EVICTION_RATE",
    default: s(KV_DEFAULTS.evictionRate),
    by: "prefill",
    meaning: "prompt KVs per kept KV (1 = no eviction)",
  },
  {
    name: "KVRELAY_PROTECTED_WINDOW",
    default: s(KV_DEFAULTS.protectedWindow),
    by: "prefill",
    meaning: "last prompt tokens never evicted",
  },
  {
    name: "KVRELAY_OBSERVATION_WINDOW",
    default: s(KV_DEFAULTS.observationWindow),
    by: "prefill",
    meaning: "queries that score the KVs for eviction",
  },
  {
    name: "KVRELAY_MAX_POOL",
    default: s(KV_DEFAULTS.maxPool),
    by: "prefill",
    meaning: "max-pool kernel over the eviction metric (0, 1 = none)",
  },
  {
    name: "KVRELAY_SINK",
    default: s(KV_DEFAULTS.sink),
    by: "prefill",
    meaning: "first prompt tokens never evicted",
  },
  {
    name: "KVRELAY_HEAD_FLOOR",
    default: s(KV_DEFAULTS.headFloor),
    by: "all",
    meaning: "KVs every (layer, KV head) keeps at least when evicting, at prefill and during decode",
  },
  {
    name: "KVRELAY_BLOCK_SIZE",
    default: s(KV_DEFAULTS.blockSize),
    by: "all",
    meaning: "KVs of one head per block",
  },
  {
    name: "KVRELAY_PIPELINE",
    default: "1",
    by: "prefill",
    meaning: "encode, send and decode layer by layer, overlapped",
  },
  {
    name: "KVRELAY_PREFILL_GROUPS",
    default: s(DEFAULTS.prefillGroups),
    by: "prefill",
    meaning:
      "prefill as this many layer groups, the hand-off starting on each while the next computes (auto: a layer each on the CPU, 1 on WebGPU)",
  },
  {
    name: "KVRELAY_LINK_GBPS",
    default: "",
    by: "prefill",
    meaning: "model the prefill → decode link at this speed (unset: as fast as it goes)",
  },
  {
    name: "KVRELAY_LINK_RTT_MS",
    default: "0",
    by: "prefill",
    meaning: "round trip of the modelled link (needs KVRELAY_LINK_GBPS)",
  },
  {
    name: "KVRELAY_MAX_BUNDLE_BYTES",
    default: s(DEFAULTS.maxBundleBytes),
    by: "decode",
    meaning: "largest bundle decode accepts",
  },
  // ---- decode
  {
    name: "KVRELAY_DECODE_MAX_BLOCKS",
    default: s(DEFAULTS.decodeMaxBlocks),
    by: "decode",
    meaning: "block store budget, in blocks",
  },
  {
    name: "KVRELAY_DECODE_MAX_BATCH",
    default: s(DEFAULTS.decodeMaxBatch),
    by: "decode",
    meaning: "sequences per decode step",
  },
  {
    name: "KVRELAY_CANARY_RATE",
    default: s(DEFAULTS.canaryRate),
    by: "decode",
    meaning: "share of requests decode also runs on the uncompressed KV, reported in usage.kv.canary",
  },
  // ---- requests, failure and overload
  {
    name: "KVRELAY_API_KEYS",
    default: "",
    by: "gateway",
    meaning: "comma-separated bearer tokens for /v1 (unset: open)",
  },
  {
    name: "KVRELAY_MAX_TOKENS_LIMIT",
    default: s(DEFAULTS.maxTokensLimit),
    by: "gateway",
    meaning: "largest max_tokens (also capped by the model's context)",
  },
  {
    name: "KVRELAY_MAX_BODY_BYTES",
    default: s(DEFAULTS.maxBodyBytes),
    by: "gateway",
    meaning: "largest request body (uploads excepted)",
  },
  {
    name: "KVRELAY_MAX_INFLIGHT",
    default: s(DEFAULTS.maxInflight),
    by: "gateway",
    meaning: "completions at once before a 429 (0 = no limit)",
  },
  {
    name: "KVRELAY_REQUEST_TIMEOUT_MS",
    default: s(DEFAULTS.requestTimeoutMs),
    by: "all",
    meaning: "one deadline for everything before the first token",
  },
  {
    name: "KVRELAY_HEARTBEAT_MS",
    default: s(DEFAULTS.heartbeatMs),
    by: "decode",
    meaning: "decode's 'still holding it' on a request's token subject",
  },
  {
    name: "KVRELAY_LIVENESS_MS",
    default: s(DEFAULTS.livenessMs),
    by: "gateway",
    meaning: "silence before the gateway probes decode (≥ 2 heartbeats)",
  },
  {
    name: "KVRELAY_SSE_KEEPALIVE_MS",
    default: s(DEFAULTS.sseKeepAliveMs),
    by: "gateway",
    meaning: "keep-alive comment of a waiting stream",
  },
  {
    name: "KVRELAY_COMPLETION_ATTEMPTS",
    default: s(DEFAULTS.completionAttempts),
    by: "gateway",
    meaning: "runs of a completion that failed before its first token",
  },
  // ---- files and batches
  {
    name: "KVRELAY_UPLOAD_QUOTA_BYTES",
    default: s(DEFAULTS.uploadQuotaBytes),
    by: "gateway",
    meaning: "live uploads per API key (0 = no limit)",
  },
  {
    name: "KVRELAY_FILE_TTL_S",
    default: s(DEFAULTS.fileTtlS),
    by: "gateway",
    meaning: "life of a file (0 = until deleted)",
  },
  {
    name: "KVRELAY_BATCH_CONCURRENCY",
    default: s(DEFAULTS.batchConcurrency),
    by: "batch",
    meaning: "batch lines a worker runs at once",
  },
  {
    name: "KVRELAY_BATCH_ACK_WAIT_MS",
    default: s(DEFAULTS.batchAckWaitMs),
    by: "batch",
    meaning: "a line of a dead worker is redelivered after this",
  },
  {
    name: "KVRELAY_BATCH_BACKEND",
    default: "nats",
    by: "batch",
    meaning: "nats, or echo (no model; tests and demos)",
  },
  { name: "KVRELAY_ECHO_DELAY_MS", default: "0", by: "batch", meaning: "the echo backend's delay per line" },
  // ---- tools and tests
  {
    name: "KVRELAY_URL",
    default: "http://127.0.0.1:<KVRELAY_PORT>",
    by: "cli",
    meaning: "gateway the batch command talks to",
  },
  { name: "KVRELAY_API_KEY", default: "", by: "cli", meaning: "key the batch command sends" },
  { name: "KVRELAY_TEST_LOGS", default: "", by: "tests", meaning: "set: tests show their services' logs" },
];

const KNOWN = new Set(VARIABLES.map((v) => v.name));

/** `KVRELAY_*` names in `env` that no table row knows. */
export function unknownVariables(env: Record<string, string | undefined>): string[] {
  return Object.keys(env).filter((k) => k.startsWith("KVRELAY_") && !KNOWN.has(k)).sort();
}

/** Says on stderr which `KVRELAY_*` variables of the environment nothing reads. */
export function warnUnknownVariables(
  who: string,
  env: Record<string, string | undefined> = Deno.env.toObject(),
) {
  for (const k of unknownVariables(env)) {
    console.error(`[${who}] ${k} is not a kvrelay setting and is ignored (see README, Configuration)`);
  }
}

/** The README's table of the variables. */
export function variablesMarkdown(): string {
  const rows = VARIABLES.map((v) =>
    `| \`${v.name}\` | ${v.default ? `\`${v.default}\`` : ""} | ${v.by} | ${v.meaning} |`
  );
  return ["| Variable | Default | Read by | Meaning |", "| --- | --- | --- | --- |", ...rows].join("\n");
}
