/**
 * Spearman's rank correlation: the Pearson correlation of the two vectors' ranks, ties given
 * their average rank (the textbook definition, as `scipy.stats.spearmanr` computes it).
 * Correlating many rows against each other is done on standardized ranks (mean 0, norm 1), so
 * each pair costs one dot product.
 * @module
 */

/** Average ranks (0-based) of `x`, ties sharing the mean of the ranks they span. */
export function ranks(x: ArrayLike<number>): Float64Array {
  const n = x.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => x[a] - x[b] || a - b);
  const r = new Float64Array(n);
  for (let i = 0; i < n;) {
    let j = i + 1;
    while (j < n && x[order[j]] === x[order[i]]) j++;
    const mean = (i + j - 1) / 2;
    for (let m = i; m < j; m++) r[order[m]] = mean;
    i = j;
  }
  return r;
}

/**
 * `x`'s ranks centred and scaled to unit norm, so Spearman(x, y) is the dot product of two
 * of these; all NaN when `x` is constant (its rank correlation is undefined).
 */
export function standardizedRanks(x: ArrayLike<number>): Float64Array {
  const r = ranks(x);
  const mean = (r.length - 1) / 2;
  let norm = 0;
  for (let i = 0; i < r.length; i++) (r[i] -= mean), (norm += r[i] * r[i]);
  norm = Math.sqrt(norm);
  for (let i = 0; i < r.length; i++) r[i] = norm > 0 ? r[i] / norm : NaN;
  return r;
}

/** The dot product of two standardized rank vectors: their Spearman correlation (NaN if either is). */
export function rankDot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** Spearman's rank correlation of `x` and `y` (same length ≥ 2); NaN when either is constant. */
export function spearman(x: ArrayLike<number>, y: ArrayLike<number>): number {
  if (x.length !== y.length) throw new RangeError(`lengths differ: ${x.length} and ${y.length}`);
  return rankDot(standardizedRanks(x), standardizedRanks(y));
}
