/**
 * Per-request KV settings: the `kv_compression` object of a request body (or the CLI's
 * flags) merged over the configured defaults, validated field by field.
 * @module
 */
import type { CodecChoice, KvDefaults } from "../config/mod.ts";
import { CODEC_TRAITS, CODECS, isCodecName } from "../codec/traits.ts";
import { badRequest } from "../errors.ts";
import type { EvictionPolicy, KvSettings } from "../handoff/contract.ts";

const POLICIES: EvictionPolicy[] = ["kvcompress", "uniform", "recency"];
const KNOWN = new Set([
  "codec",
  "error_bound",
  "error_mode",
  "index_share",
  "frames",
  "eviction",
  "eviction_rate",
  "max_cache_tokens",
  "protected_window",
  "observation_window",
  "max_pool",
  "sink",
  "block_size",
  "head_floor",
]);

/** A request's KV settings before its own `kv_compression`: the defaults, per-head frames, KV-Compress. */
export function defaultKvSettings(d: KvDefaults): KvSettings {
  return { ...d, frames: "head", eviction: "kvcompress" };
}

const P = "kv_compression";

function numberIn(v: unknown, name: string, min: number, max: number, integer = false): number {
  if (
    typeof v !== "number" || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))
  ) {
    throw badRequest(
      `${P}.${name} must be ${integer ? "an integer" : "a number"} in [${min}, ${max}]`,
      `${P}.${name}`,
    );
  }
  return v;
}

/** Merges a request's `kv_compression` (snake_case, as in the API) over `base`. */
export function resolveKvSettings(base: KvSettings, input: unknown): KvSettings {
  if (input === undefined || input === null) return { ...base };
  if (typeof input !== "object" || Array.isArray(input)) throw badRequest(`${P} must be an object`, P);
  const o = input as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!KNOWN.has(k)) throw badRequest(`unknown field ${P}.${k}`, `${P}.${k}`);
  const s: KvSettings = { ...base };
  if (o.codec !== undefined) {
    if (!isCodecName(o.codec)) {
      throw badRequest(`${P}.codec must be one of ${CODECS.join(", ")}`, `${P}.codec`);
    }
    s.codec = o.codec as CodecChoice;
  }
  if (o.error_bound !== undefined) s.errorBound = numberIn(o.error_bound, "error_bound", 1e-9, 1);
  if (o.error_mode !== undefined) {
    if (o.error_mode !== "rel" && o.error_mode !== "abs") {
      throw badRequest(`${P}.error_mode must be rel or abs`, `${P}.error_mode`);
    }
    s.errorMode = o.error_mode;
  }
  if (o.index_share !== undefined) {
    s.indexShare = o.index_share === "auto" ? "auto" : numberIn(o.index_share, "index_share", 1, 4096, true);
  }
  if (o.frames !== undefined) {
    if (o.frames !== "head" && o.frames !== "layer") {
      throw badRequest(`${P}.frames must be head or layer`, `${P}.frames`);
    }
    s.frames = o.frames;
  }
  if (o.eviction !== undefined) {
    if (!POLICIES.includes(o.eviction as EvictionPolicy)) {
      throw badRequest(`${P}.eviction must be one of ${POLICIES.join(", ")}`, `${P}.eviction`);
    }
    s.eviction = o.eviction as EvictionPolicy;
  }
  if (o.eviction_rate !== undefined) s.evictionRate = numberIn(o.eviction_rate, "eviction_rate", 1, 1024);
  if (o.max_cache_tokens !== undefined) {
    s.maxCacheTokens = numberIn(o.max_cache_tokens, "max_cache_tokens", 1, 1 << 22, true);
  }
  if (o.eviction_rate !== undefined && o.max_cache_tokens !== undefined) {
    throw badRequest(`${P}: give eviction_rate or max_cache_tokens, not both`, P);
  }
  if (o.protected_window !== undefined) {
    s.protectedWindow = numberIn(o.protected_window, "protected_window", 0, 1 << 22, true);
  }
  if (o.observation_window !== undefined) {
    s.observationWindow = numberIn(o.observation_window, "observation_window", 1, 4096, true);
  }
  if (o.max_pool !== undefined) s.maxPool = numberIn(o.max_pool, "max_pool", 0, 255, true);
  if (o.sink !== undefined) s.sink = numberIn(o.sink, "sink", 0, 1 << 22, true);
  if (o.block_size !== undefined) s.blockSize = numberIn(o.block_size, "block_size", 1, 1024, true);
  if (o.head_floor !== undefined) s.headFloor = numberIn(o.head_floor, "head_floor", 0, 1 << 22, true);
  // a knob the chosen codec does not have is refused, never silently ignored
  if (o.index_share !== undefined && !CODEC_TRAITS[s.codec].sortIndex) {
    const which = CODECS.filter((c) => CODEC_TRAITS[c].sortIndex).join(", ");
    throw badRequest(
      `${P}.index_share applies to the ${which} codec only, not ${s.codec}`,
      `${P}.index_share`,
    );
  }
  if ((o.error_bound !== undefined || o.error_mode !== undefined) && !CODEC_TRAITS[s.codec].bounded) {
    const param = o.error_bound !== undefined ? "error_bound" : "error_mode";
    throw badRequest(`${P}.${param} applies to error-bounded codecs only, not ${s.codec}`, `${P}.${param}`);
  }
  return s;
}
