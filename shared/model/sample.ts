/**
 * Picks the next token from logits: argmax at temperature 0, otherwise softmax sampling
 * with optional nucleus (top-p) truncation. Penalties, logit bias and log-probabilities come
 * before and after it, in sampling/.
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
  // Nucleus: the most likely tokens whose mass reaches topP, i.e. every token at or above the
  // probability where the descending cumulative sum first reaches it. A native numeric sort of
  // the probabilities finds that threshold (a comparator sort of ids cost 2 ms a step at 4096).
  let threshold = 0;
  if (topP < 1) {
    const sorted = probs.slice().sort();
    let cum = 0;
    for (let k = n - 1; k >= 0; k--) {
      cum += sorted[k];
      if (cum >= topP) {
        threshold = sorted[k];
        break;
      }
    }
  }
  let mass = 0;
  for (let i = 0; i < n; i++) if (probs[i] >= threshold) mass += probs[i];
  let r = rng() * mass;
  let last = best;
  for (let i = 0; i < n; i++) {
    if (probs[i] < threshold) continue;
    last = i;
    r -= probs[i];
    if (r < 0) return i;
  }
  return last;
}
