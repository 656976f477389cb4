/**
 * KV-Compress eviction planning (ARCHITECTURE.md §5): from the eviction metric of a
 * prompt, decide which KVs of each (layer, KV head) survive, evicting whole blocks at a
 * rate that varies per head; plus the uniform and recency baselines and the gather of
 * survivors. Knows nothing about models or transport: metric in, plan out.
 *
 * @example
 * ```ts
 * import { applyPlan, planKvCompress } from "./mod.ts";
 * const shape = { nLayers: 1, nKvHeads: 2, nPos: 128 };
 * const metric = new Float32Array(256).map((_, i) => Math.sin(i) ** 2);
 * const plan = planKvCompress(metric, shape, { rate: 2, protectedWindow: 16 });
 * const layer0 = applyPlan({ keys: new Float32Array(2048), values: new Float32Array(2048) }, plan, 0, 8);
 * console.log(plan.keptCount, layer0.positions[0].length + layer0.positions[1].length); // 128 128
 * ```
 * @module
 */
export {
  DEFAULT_BLOCK_SIZE,
  DEFAULT_PROTECTED_WINDOW,
  DEFAULT_SINK,
  type EvictionOptions,
  type EvictionPlan,
  type KvShape,
  MAX_POSITIONS,
} from "./types.ts";
export { planKvCompress } from "./plan_kv_compress.ts";
export { planUniform } from "./plan_uniform.ts";
export { planRecency } from "./plan_recency.ts";
export { type DecodePlan, type DecodePlanOptions, planDecodeEviction } from "./plan_decode.ts";
export { capPlan } from "./cap_plan.ts";
export { applyPlan, gatherRows, type LayerSurvivors } from "./apply_plan.ts";
export { maxPool1d } from "./max_pool.ts";
export { attentionMetric, type AttentionShape } from "./attention_metric.ts";
