/**
 * Recency baseline: every (layer, KV head) keeps its sink and its last positions.
 * @module
 */
import { assemblePlan, rankByPosition, uniformBlocks } from "./_rank.ts";
import { type EvictionOptions, type EvictionPlan, type KvShape, resolveEviction } from "./types.ts";

/**
 * Plans eviction that ignores the metric: each head keeps the first `sink` positions and
 * the last N, evicting the oldest other positions in whole blocks, with the same kept
 * count per head as {@link planUniform}. The metric is only checked for length.
 *
 * @example
 * ```ts
 * import { planRecency } from "./plan_recency.ts";
 * const shape = { nLayers: 1, nKvHeads: 1, nPos: 64 };
 * const plan = planRecency(new Float32Array(64), shape, { rate: 2, blockSize: 8, sink: 4, protectedWindow: 8 });
 * console.log(plan.kept[0][3], plan.kept[0][4]); // 3 36
 * ```
 */
export function planRecency(metric: Float32Array, shape: KvShape, opts: EvictionOptions): EvictionPlan {
  const r = resolveEviction(metric.length, shape, opts);
  const rankings = rankByPosition(shape, r);
  return assemblePlan(shape, r, rankings, uniformBlocks(shape, r, rankings));
}
