/**
 * Uniform-rate baseline: every (layer, KV head) keeps the same count, its own lowest-metric
 * blocks evicted.
 * @module
 */
import { assemblePlan, rankByMetric, uniformBlocks } from "./_rank.ts";
import { type EvictionOptions, type EvictionPlan, type KvShape, resolveEviction } from "./types.ts";

/**
 * Plans eviction at one kept fraction for every head: each head keeps at most
 * `floor(target / (nLayers * nKvHeads))` KVs, evicting whole blocks of its lowest-metric
 * KVs (same ranking and tie rule as {@link planKvCompress}, without the global competition).
 *
 * @example
 * ```ts
 * import { planUniform } from "./plan_uniform.ts";
 * const shape = { nLayers: 2, nKvHeads: 2, nPos: 128 };
 * const plan = planUniform(new Float32Array(512).fill(1), shape, { rate: 4, protectedWindow: 16 });
 * console.log(plan.kept.map((k) => k.length)); // [32, 32, 32, 32]
 * ```
 */
export function planUniform(metric: Float32Array, shape: KvShape, opts: EvictionOptions): EvictionPlan {
  const r = resolveEviction(metric.length, shape, opts);
  const rankings = rankByMetric(metric, shape, r);
  return assemblePlan(shape, r, rankings, uniformBlocks(shape, r, rankings));
}
