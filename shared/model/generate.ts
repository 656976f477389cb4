/**
 * The reference generation loop with a full (never evicted) cache: prefill the prompt,
 * then decode one token at a time, appending each new K/V. Stops at BOS or EOS (not
 * returned) or after `maxTokens`.
 * @module
 */
import type { Model } from "./model.ts";
import type { LayerKv } from "./steps.ts";
import { sampleToken } from "./sample.ts";

/** Appends one position (nKv, hd) to a cache (nKv, P, hd). */
function appendPosition(cache: Float32Array, add: Float32Array, nKv: number, hd: number): Float32Array {
  const P = cache.length / (nKv * hd);
  const out = new Float32Array(cache.length + add.length);
  for (let h = 0; h < nKv; h++) {
    out.set(cache.subarray(h * P * hd, (h + 1) * P * hd), h * (P + 1) * hd);
    out.set(add.subarray(h * hd, (h + 1) * hd), (h * (P + 1) + P) * hd);
  }
  return out;
}

/**
 * Generates up to `maxTokens` ids after `promptIds`; returns the generated ids only.
 *
 * @example
 * ```ts
 * import { generateDense, Model } from "./mod.ts";
 * const model = await Model.load({ modelPath: "stories260K.bin", tokenizerPath: "tok512.bin" });
 * const ids = await generateDense(model, [1], { maxTokens: 64 });
 * console.log(model.tokenizer.decode(ids));
 * ```
 */
export async function generateDense(
  model: Model,
  promptIds: number[],
  opts: {
    maxTokens: number;
    temperature?: number;
    topP?: number;
    rng?: () => number;
    /** Called with each decode step's logits (not prefill's), as the decode engine's sinks are. */
    onLogits?: (logits: Float32Array) => void;
  },
): Promise<number[]> {
  const { nKvHeads, headDim, maxSeqLen } = model.config;
  const { bosId, eosId } = model.tokenizer;
  const sample = (logits: Float32Array) =>
    sampleToken(logits, { temperature: opts.temperature ?? 0, topP: opts.topP, rng: opts.rng });
  const out: number[] = [];
  if (opts.maxTokens <= 0) return out;
  const pre = await model.prefill(promptIds);
  let cache: LayerKv[] = pre.layers;
  let pos = pre.nPos;
  let next = sample(pre.logits);
  while (next !== bosId && next !== eosId) {
    out.push(next);
    if (out.length >= opts.maxTokens || pos >= maxSeqLen) break;
    const lengths = Int32Array.from({ length: nKvHeads }, () => pos);
    const step = await model.decode({
      tokens: [next],
      positions: [pos],
      past: cache.map((c) => ({ keys: c.keys, values: c.values })),
      pastLengths: cache.map(() => lengths),
    });
    cache = cache.map((c, l) => ({
      keys: appendPosition(c.keys, step.newKeys[l], nKvHeads, headDim),
      values: appendPosition(c.values, step.newValues[l], nKvHeads, headDim),
    }));
    pos++;
    opts.onLogits?.(step.logits);
    next = sample(step.logits);
  }
  return out;
}
