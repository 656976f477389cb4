/**
 * Gathers the surviving K and V rows of one layer according to a plan.
 * @module
 */
import type { EvictionPlan } from "./types.ts";

/** One layer's survivors, per KV head. */
export interface LayerSurvivors {
  /** Per head: `[nKept, headDim]`. */
  keys: Float32Array[];
  /** Per head: `[nKept, headDim]`. */
  values: Float32Array[];
  /** Per head: the true positions of the rows, ascending. */
  positions: Int32Array[];
}

/**
 * Copies the kept rows of every KV head of `layer` out of a dense layer cache.
 *
 * @param kv `keys` and `values` of one layer, each `[nKvHeads, nPos, headDim]`
 * @example
 * ```ts
 * import { applyPlan } from "./apply_plan.ts";
 * import { planRecency } from "./plan_recency.ts";
 * const shape = { nLayers: 1, nKvHeads: 1, nPos: 32 };
 * const plan = planRecency(new Float32Array(32), shape, { rate: 2, blockSize: 8, sink: 0, protectedWindow: 8 });
 * const kv = { keys: new Float32Array(64).map((_, i) => i), values: new Float32Array(64) };
 * const s = applyPlan(kv, plan, 0, 2);
 * console.log(s.positions[0][0], s.keys[0][0]); // 16 32
 * ```
 */
export function applyPlan(
  kv: { keys: Float32Array; values: Float32Array },
  plan: EvictionPlan,
  layer: number,
  headDim: number,
): LayerSurvivors {
  const { nKvHeads, nPos } = plan;
  const size = nKvHeads * nPos * headDim;
  if (!Number.isInteger(headDim) || headDim <= 0) throw new TypeError(`applyPlan: headDim ${headDim}`);
  if (kv.keys.length !== size || kv.values.length !== size) {
    throw new TypeError(
      `applyPlan: keys ${kv.keys.length} / values ${kv.values.length} values, [${nKvHeads}, ${nPos}, ${headDim}] needs ${size}`,
    );
  }
  if (!Number.isInteger(layer) || layer < 0 || layer >= plan.nLayers) {
    throw new RangeError(`applyPlan: layer ${layer} outside [0, ${plan.nLayers})`);
  }
  const out: LayerSurvivors = { keys: [], values: [], positions: [] };
  for (let h = 0; h < nKvHeads; h++) {
    const pos = plan.kept[layer * nKvHeads + h];
    const k = new Float32Array(pos.length * headDim);
    const v = new Float32Array(pos.length * headDim);
    const base = h * nPos * headDim;
    gatherRows(kv.keys, base, pos, headDim, k);
    gatherRows(kv.values, base, pos, headDim, v);
    out.keys.push(k);
    out.values.push(v);
    out.positions.push(pos.slice());
  }
  return out;
}

/**
 * Copies the rows `positions` of `src` (rows of `width` values from `base`) into `dst`, one
 * `set` per run of consecutive positions (the protected window and sink are such runs).
 */
export function gatherRows(
  src: Float32Array,
  base: number,
  positions: Int32Array,
  width: number,
  dst: Float32Array,
) {
  const n = positions.length;
  for (let i = 0; i < n;) {
    let j = i + 1;
    while (j < n && positions[j] === positions[j - 1] + 1) j++;
    const from = base + positions[i] * width;
    dst.set(src.subarray(from, from + (j - i) * width), i * width);
    i = j;
  }
}
