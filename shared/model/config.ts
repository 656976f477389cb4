/**
 * Model hyper-parameters shared by every loader and the graph builder.
 * @module
 */

/** Hyper-parameters of a Llama-family decoder. */
export interface ModelConfig {
  name: string;
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  vocabSize: number;
  maxSeqLen: number;
  ropeTheta: number;
  normEps: number;
}

/** Throws a `RangeError` naming the first inconsistent field. */
export function validateConfig(c: ModelConfig): void {
  const positive = [
    "dim",
    "hiddenDim",
    "nLayers",
    "nHeads",
    "nKvHeads",
    "headDim",
    "vocabSize",
    "maxSeqLen",
  ] as const;
  for (const k of positive) {
    if (!Number.isInteger(c[k]) || c[k] <= 0 || c[k] > 1 << 24) {
      throw new RangeError(`model config: ${k} = ${c[k]} is not a positive integer in range`);
    }
  }
  if (c.nHeads % c.nKvHeads !== 0) {
    throw new RangeError(`model config: n_heads ${c.nHeads} is not a multiple of n_kv_heads ${c.nKvHeads}`);
  }
  if (c.headDim % 2 !== 0) throw new RangeError(`model config: head_dim ${c.headDim} is odd`);
  if (!(c.ropeTheta > 0)) throw new RangeError(`model config: rope_theta ${c.ropeTheta} must be > 0`);
  if (!(c.normEps > 0)) throw new RangeError(`model config: norm eps ${c.normEps} must be > 0`);
}
