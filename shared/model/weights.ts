/**
 * Weights of a Llama-family decoder in the one layout the graph builder knows:
 * Hugging Face `nn.Linear` order (`[out, in]`, row-major fp32) and the rotate-half RoPE
 * convention (query/key rows of each head ordered as (x[0..hd/2), x[hd/2..hd)) pairs).
 * Loaders for other layouts convert into this.
 * @module
 */
import type { ModelConfig } from "./config.ts";

/** One decoder layer. */
export interface LayerWeights {
  attnNorm: Float32Array; // (dim)
  wq: Float32Array; // (nHeads*headDim, dim)
  wk: Float32Array; // (nKvHeads*headDim, dim)
  wv: Float32Array; // (nKvHeads*headDim, dim)
  wo: Float32Array; // (dim, nHeads*headDim)
  bq?: Float32Array; // (nHeads*headDim), Qwen2 only
  bk?: Float32Array; // (nKvHeads*headDim)
  bv?: Float32Array; // (nKvHeads*headDim)
  ffnNorm: Float32Array; // (dim)
  w1: Float32Array; // gate (hiddenDim, dim)
  w2: Float32Array; // down (dim, hiddenDim)
  w3: Float32Array; // up (hiddenDim, dim)
}

/** A whole model. */
export interface LlamaWeights {
  tokEmb: Float32Array; // (vocabSize, dim)
  layers: LayerWeights[];
  finalNorm: Float32Array; // (dim)
  classifier?: Float32Array; // (vocabSize, dim); absent when tied to tokEmb
}

/** Checks every buffer against the config; throws a `RangeError` naming the tensor. */
export function validateWeights(c: ModelConfig, w: LlamaWeights): void {
  const q = c.nHeads * c.headDim;
  const kv = c.nKvHeads * c.headDim;
  const want = (name: string, a: Float32Array | undefined, n: number) => {
    if (a === undefined || a.length !== n) {
      throw new RangeError(`weights: ${name} has ${a?.length ?? "no"} values, expected ${n}`);
    }
  };
  want("tok_embeddings", w.tokEmb, c.vocabSize * c.dim);
  if (w.layers.length !== c.nLayers) {
    throw new RangeError(`weights: ${w.layers.length} layers, expected ${c.nLayers}`);
  }
  w.layers.forEach((l, i) => {
    want(`layers.${i}.attention_norm`, l.attnNorm, c.dim);
    want(`layers.${i}.wq`, l.wq, q * c.dim);
    want(`layers.${i}.wk`, l.wk, kv * c.dim);
    want(`layers.${i}.wv`, l.wv, kv * c.dim);
    want(`layers.${i}.wo`, l.wo, c.dim * q);
    if (l.bq) want(`layers.${i}.bq`, l.bq, q);
    if (l.bk) want(`layers.${i}.bk`, l.bk, kv);
    if (l.bv) want(`layers.${i}.bv`, l.bv, kv);
    want(`layers.${i}.ffn_norm`, l.ffnNorm, c.dim);
    want(`layers.${i}.w1`, l.w1, c.hiddenDim * c.dim);
    want(`layers.${i}.w2`, l.w2, c.dim * c.hiddenDim);
    want(`layers.${i}.w3`, l.w3, c.hiddenDim * c.dim);
  });
  want("norm", w.finalNorm, c.dim);
  if (w.classifier) want("output", w.classifier, c.vocabSize * c.dim);
}
