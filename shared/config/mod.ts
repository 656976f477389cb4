/**
 * All settings in one place: `DEFAULTS` (defaults.ts) → environment → `loadConfig()`, which
 * validates and throws at start-up, never later. Services and tools read only the returned
 * object. Every variable, with its default and meaning, is in the one table of variables.ts.
 * @module
 */
import { badRequest } from "../errors.ts";
import { type CodecName, CODECS } from "../codec/traits.ts";
import { type NatsAuth, natsAuthFromEnv } from "../nats/auth.ts";
import { DEFAULTS } from "./defaults.ts";
import type { CodecDeviceChoice, DeviceChoice } from "./devices.ts";

/** Where the embedded default model lives, relative to the repo root. */
export const EMBEDDED_MODEL_DIR = new URL("../../infra/model/kvrelay-tiny", import.meta.url).pathname;

/** The project's data directory (`KVRELAY_DATA_DIR` overrides it): what must survive a restart. */
export const PROJECT_DATA_DIR = new URL("../../.data", import.meta.url).pathname;

export type { CodecDeviceChoice, DeviceChoice } from "./devices.ts";

/** A codec of the one table in shared/codec/traits.ts. */
export type CodecChoice = CodecName;
export { KV_DEFAULTS, type KvDefaults } from "./kv_defaults.ts";
import { KV_DEFAULTS, type KvDefaults } from "./kv_defaults.ts";

export interface Config {
  natsUrl: string;
  host: string;
  port: number;
  modelPath?: string;
  tokenizerPath?: string;
  /** Name served in /v1/models and checked in requests. */
  modelName?: string;
  threads: number;
  /** Model runtime device (KVRELAY_DEVICE). */
  device: DeviceChoice;
  /** Codec backend of the compression and decode services (KVRELAY_CODEC_DEVICE). */
  codecDevice: CodecDeviceChoice;
  /** The CUDA codec library (KVRELAY_CUDA_LIB; default `<repo>/.cuda/libkvrelay_cuda.so`). */
  cudaLib?: string;
  /**
   * Which CUDA device the codec uses (KVRELAY_CUDA_DEVICE, an index among the visible ones;
   * default 0): prefill's compression on one GPU and decode on another of the same host.
   */
  cudaDevice: number;
  /**
   * The one GPU this process may use (KVRELAY_GPU, nvidia-smi's index): WebGPU through the
   * GPU-select layer, CUDA through CUDA_VISIBLE_DEVICES (shared/webgpu/gpu_select). Unset: any.
   */
  gpu?: number;
  kv: KvDefaults;
  /** Decode block store budget, in blocks of `kv.blockSize` KVs of one head. */
  decodeMaxBlocks: number;
  decodeMaxBatch: number;
  /** Upper bound for one request's whole hand-off, in ms. */
  requestTimeoutMs: number;
  /** Largest bundle a receiver accepts, whatever a stream claims. */
  maxBundleBytes: number;
  maxTokensLimit: number;
  maxBodyBytes: number;
  apiKeys: string[];
  /**
   * The modelled link between the prefill node and decode (KVRELAY_LINK_GBPS, KVRELAY_LINK_RTT_MS):
   * bytes of the hand-off are paced at `gbps` and delayed by half the round trip each way.
   * No `gbps`: the transfer runs at whatever the network (loopback) gives.
   */
  link: { gbps?: number; rttMs: number };
  /** Encode, send and decode layer by layer, overlapping (KVRELAY_PIPELINE, default on). */
  pipeline: boolean;
  /**
   * Prefill as this many consecutive layer groups (KVRELAY_PREFILL_GROUPS): the hand-off starts
   * on a group's KV while the next group computes. `auto` (the default): a group a layer on the
   * CPU, one graph on WebGPU (`ModelLoadOptions.prefillGroups`).
   */
  prefillGroups: number | "auto";
  /**
   * Codec worker threads of the prefill node's compression and of decode (KVRELAY_CODEC_THREADS);
   * 1 (the default) encodes and decodes on the service's own thread.
   */
  codecThreads: number;
  /** How this process proves who it is to NATS (NATS_NKEY, NATS_CREDS, NATS_USER, NATS_TLS_*). */
  natsAuth: NatsAuth;
  /** Bytes of live batch uploads one API key may hold (KVRELAY_UPLOAD_QUOTA_BYTES; 0 = no limit). */
  uploadQuotaBytes: number;
  /** Seconds a file (upload or batch output) lives (KVRELAY_FILE_TTL_S; 0 = until deleted). */
  fileTtlS: number;
  /** Completions the gateway runs at once; past it, a 429 with `Retry-After` (KVRELAY_MAX_INFLIGHT; 0 = no limit). */
  maxInflight: number;
  /**
   * Share of requests decode also runs teacher-forced on the uncompressed KV, to report what
   * compression cost them in `usage.kv.canary` (KVRELAY_CANARY_RATE, 0..1; 0 = none).
   */
  canaryRate: number;
  /** How often decode tells the gateway it still holds a request (KVRELAY_HEARTBEAT_MS). */
  heartbeatMs: number;
  /**
   * Silence on a request's token subject after which the gateway probes its decode instance, and
   * the longest the probe waits (KVRELAY_LIVENESS_MS; at least twice the heartbeat).
   */
  livenessMs: number;
  /** A waiting SSE stream gets a `: keep-alive` comment this often (KVRELAY_SSE_KEEPALIVE_MS). */
  sseKeepAliveMs: number;
  /** Runs of a completion that failed with `unavailable` before a token was streamed (KVRELAY_COMPLETION_ATTEMPTS). */
  completionAttempts: number;
  /** What must survive a restart lives here (KVRELAY_DATA_DIR; default `.data` in the project). */
  dataDir: string;
  /** JetStream's store under `npm start` (KVRELAY_NATS_STORE_DIR; default `<dataDir>/nats`). */
  natsStoreDir: string;
  /**
   * Where the dashboard looks up a request's spans: the OTLP endpoint the services export to
   * (OTEL_EXPORTER_OTLP_ENDPOINT, under OTEL_DENO=true). Only the bundled receiver
   * (`deno task kvrelay traces --listen`) answers such look-ups.
   */
  traceReceiver?: string;
}

export { DEFAULTS } from "./defaults.ts";
export {
  type EnvVariable,
  unknownVariables,
  VARIABLES,
  variablesMarkdown,
  warnUnknownVariables,
} from "./variables.ts";

const DEVICES: DeviceChoice[] = ["cpu", "webgpu", "auto"];
const CODEC_DEVICES: CodecDeviceChoice[] = [...DEVICES, "cuda"];

function device<T extends string>(
  env: Record<string, string | undefined>,
  key: string,
  fallback: T,
  allowed: readonly T[] = DEVICES as unknown as T[],
): T {
  const raw = env[key];
  if (raw === undefined || raw === "") return fallback;
  if (!allowed.includes(raw as T)) {
    throw badRequest(`${key} must be one of ${allowed.join(", ")}, got '${raw}'`, key);
  }
  return raw as T;
}

/** A number in [0, 1]. */
function fraction(env: Record<string, string | undefined>, key: string, fallback: number): number {
  const v = num(env, key, fallback, 0);
  if (v > 1) throw badRequest(`${key} must be a number in [0, 1], got '${env[key]}'`, key);
  return v;
}

function num(env: Record<string, string | undefined>, key: string, fallback: number, min: number): number {
  const raw = env[key];
  if (raw === undefined || raw === "") return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < min) {
    throw badRequest(`${key} must be a number >= ${min}, got '${raw}'`, key);
  }
  return v;
}

/** Reads settings from an environment map (default: the process environment). */
export function loadConfig(env: Record<string, string | undefined> = Deno.env.toObject()): Config {
  const codec = (env.KVRELAY_CODEC ?? DEFAULTS.kv.codec) as CodecChoice;
  if (!CODECS.includes(codec as CodecName)) {
    throw badRequest(`KVRELAY_CODEC must be one of ${CODECS.join(", ")}`, "KVRELAY_CODEC");
  }
  const mode = env.KVRELAY_ERROR_MODE ?? DEFAULTS.kv.errorMode;
  if (mode !== "rel" && mode !== "abs") {
    throw badRequest("KVRELAY_ERROR_MODE must be rel or abs", "KVRELAY_ERROR_MODE");
  }
  const share = env.KVRELAY_INDEX_SHARE ?? String(DEFAULTS.kv.indexShare);
  const indexShare = share === "auto"
    ? "auto"
    : num(env, "KVRELAY_INDEX_SHARE", Number(KV_DEFAULTS.indexShare), 1);
  let modelPath = env.KVRELAY_MODEL || undefined;
  if (!modelPath && existsSync(`${EMBEDDED_MODEL_DIR}/config.json`)) modelPath = EMBEDDED_MODEL_DIR;
  const heartbeatMs = num(env, "KVRELAY_HEARTBEAT_MS", DEFAULTS.heartbeatMs, 10);
  const livenessMs = num(env, "KVRELAY_LIVENESS_MS", DEFAULTS.livenessMs, 20);
  if (livenessMs < 2 * heartbeatMs) {
    throw badRequest(
      `KVRELAY_LIVENESS_MS (${livenessMs}) must be at least twice KVRELAY_HEARTBEAT_MS (${heartbeatMs})`,
      "KVRELAY_LIVENESS_MS",
    );
  }
  const dataDir = env.KVRELAY_DATA_DIR || PROJECT_DATA_DIR;
  return {
    natsUrl: env.NATS_URL || DEFAULTS.natsUrl,
    host: env.KVRELAY_HOST || DEFAULTS.host,
    port: num(env, "KVRELAY_PORT", DEFAULTS.port, 0),
    modelPath,
    tokenizerPath: env.KVRELAY_TOKENIZER || undefined,
    modelName: env.KVRELAY_MODEL_NAME || undefined,
    threads: num(env, "KVRELAY_THREADS", DEFAULTS.threads, 1),
    device: device(env, "KVRELAY_DEVICE", DEFAULTS.device),
    codecDevice: device(env, "KVRELAY_CODEC_DEVICE", DEFAULTS.codecDevice, CODEC_DEVICES),
    ...gpuSettings(env),
    kv: {
      codec,
      errorBound: num(env, "KVRELAY_ERROR_BOUND", DEFAULTS.kv.errorBound, 0),
      errorMode: mode,
      indexShare,
      evictionRate: num(env, "KVRELAY_EVICTION_RATE", DEFAULTS.kv.evictionRate, 1),
      protectedWindow: num(env, "KVRELAY_PROTECTED_WINDOW", DEFAULTS.kv.protectedWindow, 0),
      observationWindow: num(env, "KVRELAY_OBSERVATION_WINDOW", DEFAULTS.kv.observationWindow, 1),
      maxPool: num(env, "KVRELAY_MAX_POOL", DEFAULTS.kv.maxPool, 0),
      sink: num(env, "KVRELAY_SINK", DEFAULTS.kv.sink, 0),
      blockSize: num(env, "KVRELAY_BLOCK_SIZE", DEFAULTS.kv.blockSize, 1),
      headFloor: integer(env, "KVRELAY_HEAD_FLOOR", DEFAULTS.kv.headFloor, 0),
    },
    decodeMaxBlocks: num(env, "KVRELAY_DECODE_MAX_BLOCKS", DEFAULTS.decodeMaxBlocks, 1),
    decodeMaxBatch: num(env, "KVRELAY_DECODE_MAX_BATCH", DEFAULTS.decodeMaxBatch, 1),
    canaryRate: fraction(env, "KVRELAY_CANARY_RATE", DEFAULTS.canaryRate),
    requestTimeoutMs: num(env, "KVRELAY_REQUEST_TIMEOUT_MS", DEFAULTS.requestTimeoutMs, 100),
    maxBundleBytes: num(env, "KVRELAY_MAX_BUNDLE_BYTES", DEFAULTS.maxBundleBytes, 1024),
    maxTokensLimit: num(env, "KVRELAY_MAX_TOKENS_LIMIT", DEFAULTS.maxTokensLimit, 1),
    maxBodyBytes: num(env, "KVRELAY_MAX_BODY_BYTES", DEFAULTS.maxBodyBytes, 1024),
    apiKeys: (env.KVRELAY_API_KEYS ?? "").split(",").map((s) => s.trim()).filter(Boolean),
    link: linkSettings(env),
    pipeline: flag(env, "KVRELAY_PIPELINE", true),
    prefillGroups: prefillGroups(env),
    codecThreads: integer(env, "KVRELAY_CODEC_THREADS", 1, 1),
    natsAuth: natsAuthFromEnv(env),
    uploadQuotaBytes: num(env, "KVRELAY_UPLOAD_QUOTA_BYTES", DEFAULTS.uploadQuotaBytes, 0),
    fileTtlS: num(env, "KVRELAY_FILE_TTL_S", DEFAULTS.fileTtlS, 0),
    maxInflight: num(env, "KVRELAY_MAX_INFLIGHT", DEFAULTS.maxInflight, 0),
    heartbeatMs,
    livenessMs,
    sseKeepAliveMs: num(env, "KVRELAY_SSE_KEEPALIVE_MS", DEFAULTS.sseKeepAliveMs, 10),
    completionAttempts: num(env, "KVRELAY_COMPLETION_ATTEMPTS", DEFAULTS.completionAttempts, 1),
    dataDir,
    natsStoreDir: env.KVRELAY_NATS_STORE_DIR || `${dataDir}/nats`,
    traceReceiver: traceReceiver(env),
  };
}

function traceReceiver(env: Record<string, string | undefined>): string | undefined {
  const url = env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (env.OTEL_DENO !== "true" || !url) return undefined;
  if (!URL.canParse(url)) {
    throw badRequest(`OTEL_EXPORTER_OTLP_ENDPOINT is not a URL: '${url}'`, "OTEL_EXPORTER_OTLP_ENDPOINT");
  }
  return url.replace(/\/+$/, "");
}

/**
 * The CUDA codec's library and device (without KVRELAY_CODEC_DEVICE=cuda they would do nothing,
 * so they are refused), and the GPU the process is pinned to.
 */
function gpuSettings(
  env: Record<string, string | undefined>,
): Pick<Config, "cudaLib" | "cudaDevice" | "gpu"> {
  const cudaDevice = integer(env, "KVRELAY_CUDA_DEVICE", 0, 0);
  if (env.KVRELAY_CODEC_DEVICE !== "cuda") {
    for (const key of ["KVRELAY_CUDA_LIB", "KVRELAY_CUDA_DEVICE"]) {
      if (env[key]) throw badRequest(`${key} needs KVRELAY_CODEC_DEVICE=cuda`, key);
    }
  }
  const gpu = env.KVRELAY_GPU ? integer(env, "KVRELAY_GPU", 0, 0) : undefined;
  if (gpu === undefined && flag(env, "KVRELAY_GPU_SELECT_LIST", false)) {
    // the list comes from the layer, which only KVRELAY_GPU turns on
    throw badRequest("KVRELAY_GPU_SELECT_LIST needs KVRELAY_GPU", "KVRELAY_GPU_SELECT_LIST");
  }
  if (gpu !== undefined && cudaDevice !== 0) {
    // the one GPU left visible is CUDA's device 0
    throw badRequest("KVRELAY_CUDA_DEVICE must be 0 (or unset) with KVRELAY_GPU", "KVRELAY_CUDA_DEVICE");
  }
  return { cudaLib: env.KVRELAY_CUDA_LIB || undefined, cudaDevice, gpu };
}

/** The modelled link; a round trip without a speed models nothing, so it is refused. */
function linkSettings(env: Record<string, string | undefined>): Config["link"] {
  const gbps = env.KVRELAY_LINK_GBPS ? positive(env, "KVRELAY_LINK_GBPS") : undefined;
  const rttMs = num(env, "KVRELAY_LINK_RTT_MS", 0, 0);
  if (rttMs > 0 && gbps === undefined) {
    throw badRequest(
      "KVRELAY_LINK_RTT_MS needs KVRELAY_LINK_GBPS (the modelled link's speed)",
      "KVRELAY_LINK_RTT_MS",
    );
  }
  return { gbps, rttMs };
}

/** KVRELAY_PREFILL_GROUPS: "auto" or a count of at least 1, its default from DEFAULTS. */
function prefillGroups(env: Record<string, string | undefined>): number | "auto" {
  const v = env.KVRELAY_PREFILL_GROUPS || String(DEFAULTS.prefillGroups);
  return v === "auto" ? "auto" : integer({ KVRELAY_PREFILL_GROUPS: v }, "KVRELAY_PREFILL_GROUPS", 1, 1);
}

function integer(
  env: Record<string, string | undefined>,
  key: string,
  fallback: number,
  min: number,
): number {
  const v = num(env, key, fallback, min);
  if (!Number.isInteger(v)) throw badRequest(`${key} must be an integer >= ${min}, got '${env[key]}'`, key);
  return v;
}

function positive(env: Record<string, string | undefined>, key: string): number {
  const v = Number(env[key]);
  if (!(v > 0) || !Number.isFinite(v)) {
    throw badRequest(`${key} must be a number > 0, got '${env[key]}'`, key);
  }
  return v;
}

function flag(env: Record<string, string | undefined>, key: string, fallback: boolean): boolean {
  const raw = env[key];
  if (raw === undefined || raw === "") return fallback;
  if (raw === "1" || raw === "true") return true;
  if (raw === "0" || raw === "false") return false;
  throw badRequest(`${key} must be 1 or 0, got '${raw}'`, key);
}

function existsSync(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}
