/**
 * Picks the next token from logits: argmax at temperature 0, otherwise softmax sampling
 * with optional nucleus (top-p) truncation.
 * @module
 */

/**
 * Samples one token id from `logits` (vocab).
 *
 * @example
 * ```ts
 * import { sampleToken } from "./mod.ts";
 * sampleToken(Float32Array.of(0.1, 2, -1), { temperature: 0 }); // 1
 * ```
 */
export function sampleToken(
  logits: Float32Array,
  opts: { temperature: number; topP?: number; rng?: () => number },
): number {
  const n = logits.length;
  if (n === 0) throw new RangeError("sampleToken: empty logits");
  const { temperature } = opts;
  if (!(temperature >= 0)) throw new RangeError(`temperature ${temperature} must be >= 0`);
  let best = 0;
  for (let i = 1; i < n; i++) if (logits[i] > logits[best]) best = i;
  if (temperature === 0) return best;
  const topP = opts.topP ?? 1;
  if (!(topP > 0 && topP <= 1)) throw new RangeError(`topP ${topP} must be in (0, 1]`);
  const rng = opts.rng ?? Math.random;
  const probs = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += probs[i] = Math.exp((logits[i] - logits[best]) / temperature);
  for (let i = 0; i < n; i++) probs[i] /= sum;
  let order: number[];
  if (topP < 1) {
    order = Array.from({ length: n }, (_, i) => i).sort((a, b) => probs[b] - probs[a]);
    let cum = 0;
    let cut = order.length;
    for (let k = 0; k < order.length; k++) {
      cum += probs[order[k]];
      if (cum >= topP) {
        cut = k + 1;
        break;
      }
    }
    order = order.slice(0, cut);
  } else {
    order = Array.from({ length: n }, (_, i) => i);
  }
  let mass = 0;
  for (const i of order) mass += probs[i];
  let r = rng() * mass;
  for (const i of order) {
    r -= probs[i];
    if (r < 0) return i;
  }
  return order[order.length - 1];
}
