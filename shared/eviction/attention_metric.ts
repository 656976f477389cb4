/**
 * A plain TypeScript reference of the KV-Compress eviction metric for one layer. The model
 * runtime computes the metric inside its graph; this is what tests, tools and the graph's
 * own tests compare against.
 * @module
 */

/** Dimensions of one layer's attention. */
export interface AttentionShape {
  nHeads: number;
  nKvHeads: number;
  nPos: number;
  headDim: number;
}

/**
 * Softmax attention of the last `w` queries (causal, scaled by `1/sqrt(headDim)`),
 * squared, summed over those queries and over the query heads of each GQA group
 * (query head `q` reads KV head `floor(q / (nHeads / nKvHeads))`).
 *
 * @param queries `[nHeads, w, headDim]`: the queries of positions `nPos - w .. nPos - 1`
 * @param keys `[nKvHeads, nPos, headDim]`, after RoPE
 * @returns `[nKvHeads, nPos]`
 * @example
 * ```ts
 * import { attentionMetric } from "./attention_metric.ts";
 * const shape = { nHeads: 1, nKvHeads: 1, nPos: 2, headDim: 1 };
 * attentionMetric(new Float32Array([0]), new Float32Array([1, 1]), shape); // Float32Array [0.25, 0.25]
 * ```
 */
export function attentionMetric(
  queries: Float32Array,
  keys: Float32Array,
  shape: AttentionShape,
): Float32Array {
  const { nHeads, nKvHeads, nPos, headDim } = shape;
  if (nHeads % nKvHeads !== 0) throw new RangeError(`attentionMetric: ${nHeads} heads, ${nKvHeads} KV heads`);
  if (keys.length !== nKvHeads * nPos * headDim) {
    throw new TypeError(`attentionMetric: keys length ${keys.length}`);
  }
  const w = queries.length / (nHeads * headDim);
  if (!Number.isInteger(w) || w < 1 || w > nPos) {
    throw new TypeError(`attentionMetric: queries length ${queries.length}`);
  }
  const group = nHeads / nKvHeads;
  const scale = 1 / Math.sqrt(headDim);
  const out = new Float32Array(nKvHeads * nPos);
  const scores = new Float64Array(nPos);
  for (let qh = 0; qh < nHeads; qh++) {
    const kh = Math.floor(qh / group);
    const kBase = kh * nPos * headDim;
    for (let i = 0; i < w; i++) {
      const qOff = (qh * w + i) * headDim;
      const last = nPos - w + i; // causal: this query sees positions 0..last
      let max = -Infinity;
      for (let p = 0; p <= last; p++) {
        let s = 0;
        for (let d = 0; d < headDim; d++) s += queries[qOff + d] * keys[kBase + p * headDim + d];
        scores[p] = s * scale;
        if (scores[p] > max) max = scores[p];
      }
      let sum = 0;
      for (let p = 0; p <= last; p++) sum += scores[p] = Math.exp(scores[p] - max);
      for (let p = 0; p <= last; p++) {
        const a = scores[p] / sum;
        out[kh * nPos + p] += a * a;
      }
    }
  }
  return out;
}
