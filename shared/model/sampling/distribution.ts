/**
 * A next-token distribution from its logits: the log normaliser, log-probabilities, the most
 * likely token, and the KL divergence between two distributions (what log-probabilities, the
 * accuracy canary and the eviction evaluation all compute).
 * @module
 */

/** log Σ exp(x), computed from the maximum so that no exp overflows. */
export function logNormalizer(logits: ArrayLike<number>): number {
  let m = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > m) m = logits[i];
  let s = 0;
  for (let i = 0; i < logits.length; i++) s += Math.exp(logits[i] - m);
  return Math.log(s) + m;
}

/** Log-probabilities of the distribution the logits give. */
export function logSoftmax(logits: Float32Array): Float64Array {
  const logZ = logNormalizer(logits);
  return Float64Array.from(logits, (v) => v - logZ);
}

/** The index of the largest value (the first of equals). */
export function argmax(x: ArrayLike<number>): number {
  let b = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[b]) b = i;
  return b;
}

/** KL(p ‖ q) in nats, from the two distributions' logits. */
export function klFromLogits(p: Float32Array, q: Float32Array): number {
  const lp = logSoftmax(p), lq = logSoftmax(q);
  let d = 0;
  for (let i = 0; i < lp.length; i++) d += Math.exp(lp[i]) * (lp[i] - lq[i]);
  return Math.max(0, d);
}
