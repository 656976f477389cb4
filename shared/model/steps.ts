/**
 * What one prefill and one decode step take and return: the shapes `Model` and the kept-KV
 * runtime (kept_kv.ts) share, in a file of their own so that neither imports the other for them.
 * @module
 */

/** Keys and values of one layer, each (nKvHeads, nPos, headDim). */
export interface LayerKv {
  keys: Float32Array;
  values: Float32Array;
}

/** Result of `Model.prefill`. */
export interface PrefillOutput {
  logits: Float32Array; // (vocabSize) at the last prompt position
  layers: LayerKv[]; // nLayers entries
  nPos: number; // prompt length
  /**
   * (nLayers, nKvHeads, nPos): KV-Compress metric, the softmax attention probabilities of
   * the last w prompt queries, squared, summed over those queries and the query heads of
   * each GQA group (w = min(observationWindow, nPos)).
   */
  metric: Float32Array;
}

/** One decode step for B sequences. */
export interface DecodeBatch {
  tokens: number[]; // (B) new tokens
  positions: number[]; // (B) true positions (RoPE) of those tokens
  past: LayerKv[]; // per layer, keys/values each (B, nKvHeads, P, headDim), zero-padded
  pastLengths: Int32Array[]; // per layer, (B * nKvHeads): valid prefix length of each head (0..P)
}

/** Result of `Model.decode`. */
export interface DecodeOutput {
  logits: Float32Array; // (B, vocab)
  newKeys: Float32Array[]; // per layer (B, nKvHeads, headDim), after RoPE
  newValues: Float32Array[]; // per layer (B, nKvHeads, headDim)
  /**
   * On a model loaded with `attention`: per layer (B, nKvHeads, P_l + 1), the new query's
   * softmax probability² summed over the query heads of each KV head, over the step's past
   * columns and (last) the new token. `attentionLayout` maps columns to the cache's rows.
   */
  attention?: Float32Array[];
  attentionLayout?: AttentionLayout;
}

/**
 * Where head bh's cached rows sit among a step's attention columns: rows
 * `[0, lengths[l][bh])` at columns of the same index, then the `steps` rows decoded since
 * (a kept cache) at columns `gathered[l] ..`; column `gathered[l] + steps` is the new token.
 */
export interface AttentionLayout {
  lengths: Int32Array[];
  gathered: number[];
  steps: number;
}
