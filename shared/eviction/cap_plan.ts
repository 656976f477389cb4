/**
 * A per-head ceiling over any plan: `max_cache_tokens` bounds every (layer, KV head), not
 * only their mean, so that decode, which keeps evicting while it generates, starts inside
 * the budget it then holds.
 * @module
 */
import { planDecodeEviction } from "./plan_decode.ts";
import type { EvictionPlan } from "./types.ts";

/**
 * Returns `plan` with every head cut to at most `cap` kept positions (whole blocks of its
 * lowest-metric evictable KVs, or its oldest for `recency`), never below its sink, protected
 * window or floor. A plan within the cap comes back as it is.
 *
 * @param metric `[nLayers, nKvHeads, nPos]`, the metric the plan was made from
 * @example
 * ```ts
 * import { capPlan } from "./cap_plan.ts";
 * import { planKvCompress } from "./plan_kv_compress.ts";
 * const shape = { nLayers: 1, nKvHeads: 2, nPos: 64 };
 * const metric = new Float32Array(128).map((_, i) => (i < 64 ? 1 : i));
 * const o = { blockSize: 8, protectedWindow: 8, sink: 0, floor: 8 };
 * const plan = planKvCompress(metric, shape, { ...o, maxCacheTokens: 40 });
 * console.log(capPlan(plan, metric, 40, { ...o, policy: "kvcompress" }).kept.map((k) => k.length)); // [40, 40]
 * ```
 */
export function capPlan(
  plan: EvictionPlan,
  metric: Float32Array,
  cap: number,
  opts: {
    policy: "kvcompress" | "uniform" | "recency";
    blockSize: number;
    protectedWindow: number;
    sink: number;
    floor: number;
  },
): EvictionPlan {
  if (plan.kept.every((k) => k.length <= cap)) return plan;
  const { nLayers, nKvHeads, nPos } = plan;
  const rows = plan.kept.map((k, h) => Float32Array.from(k, (p) => metric[h * nPos + p]));
  const cut = planDecodeEviction(rows, {
    ...opts,
    protectedWindow: Math.min(opts.protectedWindow, nPos),
    sink: Math.min(opts.sink, nPos),
    targetKept: Number.MAX_SAFE_INTEGER,
    headCap: cap,
  });
  const perLayer = new Array<number>(nLayers).fill(0);
  let keptCount = 0;
  const kept = plan.kept.map((k, h) => {
    const gone = new Set(cut.drop[h]);
    const out = k.filter((_, i) => !gone.has(i));
    keptCount += out.length;
    perLayer[Math.floor(h / nKvHeads)] += out.length;
    return out;
  });
  return {
    ...plan,
    kept,
    keptCount,
    keptFractionPerLayer: perLayer.map((c) => c / (nKvHeads * nPos)),
  };
}
