import type { DecodeKvReport, KvSettings, KvUsage } from "../handoff/contract.ts";
import type { CompressionStats } from "./compress_stage.ts";
import { evictionEnabled, isLossless } from "./compress_stage.ts";
import { CODEC_TRAITS } from "../codec/mod.ts";

const round = (x: number, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits;

/**
 * Builds `usage.kv` from the settings and what each stage measured; `decode`, once the
 * sequence is done, adds what decode held (peaks, evictions, the canary).
 */
export function buildKvUsage(
  kv: KvSettings,
  stats: CompressionStats,
  ms: { prefill: number; transfer: number; decode_kv: number; generate: number; handoff: number },
  encoder = "cpu",
  decode?: DecodeKvReport,
): KvUsage {
  const lossless = isLossless(kv);
  const evicting = evictionEnabled(kv);
  return {
    codec: kv.codec,
    codec_family: CODEC_TRAITS[kv.codec].family,
    encoder,
    lossless,
    error_bound: lossless ? null : kv.errorBound,
    error_mode: lossless ? null : kv.errorMode,
    index_share: CODEC_TRAITS[kv.codec].sortIndex ? kv.indexShare : null,
    frames: kv.frames,
    eviction: evicting ? kv.eviction : "off",
    eviction_rate: kv.evictionRate,
    max_cache_tokens: kv.maxCacheTokens ?? null,
    protected_window: kv.protectedWindow,
    observation_window: kv.observationWindow,
    max_pool: kv.maxPool,
    block_size: kv.blockSize,
    head_floor: kv.headFloor,
    kept_fraction: round(stats.keptFraction, 5),
    kept_fraction_per_layer: stats.keptFractionPerLayer.map((f) => round(f, 5)),
    raw_basis: "fp16",
    raw_bytes: stats.rawBytes,
    wire_bytes: stats.wireBytes,
    ratio: round(stats.rawBytes / Math.max(1, stats.wireBytes), 3),
    ...withDecodeKv(decode),
    ms: {
      prefill: round(ms.prefill),
      evict: round(stats.evictMs),
      encode: round(stats.encodeMs),
      transfer: round(ms.transfer),
      decode_kv: round(ms.decode_kv),
      handoff: round(ms.handoff),
      generate: round(ms.generate),
    },
  };
}

/** The `usage.kv` fields decode reports at `done` (none before). */
export function withDecodeKv(d?: DecodeKvReport): Partial<KvUsage> {
  if (!d) return {};
  const out: Partial<KvUsage> = {
    peak_cache_tokens: d.peak_cache_tokens,
    peak_blocks: d.peak_blocks,
    decode_evictions: d.decode_evictions,
  };
  if (d.canary) out.canary = d.canary;
  return out;
}
