/**
 * How far one token's channel order predicts another's: what decides whether a sort index
 * shared by k tokens (KVSort) keeps their rows nearly sorted. Ranks are of the signed values
 * along the channels (head_dim), the order the codec's sort produces.
 *
 * For a frame x[t, c] (T tokens, D channels) and Spearman's ρ over the D channels:
 * - `adjacent`: mean over t < T−1 of ρ(x[t], x[t+1]);
 * - `group_first`: tokens cut into groups of k (the shared index's groups); mean over every
 *   token t that is not the first of its group of ρ(x[t], x[g]), g = k·floor(t / k): how well
 *   the first token's order holds over lags 1 … k−1;
 * - `group_sum`: mean over the tokens of groups of ≥ 2 of ρ(x[t], Σ_{u in t's group} x[u]):
 *   against the column sums, which is what `sortGrid` actually sorts.
 * Pairs where a token's values are all equal (ρ undefined) are left out; NaN when none is left.
 * @module
 */
import type { TokenChannels } from "./frame.ts";
import { rankDot, standardizedRanks } from "./spearman.ts";

/** Rank correlations of one frame (each in [−1, 1]; 1 = every token has the same channel order). */
export interface RankCorrelation {
  adjacent: number;
  group_first: number;
  group_sum: number;
}

/** The three rank correlations of `f` with groups of `k` tokens (KVSort's index sharing). */
export function rankCorrelation(f: TokenChannels, k: number): RankCorrelation {
  if (!(Number.isSafeInteger(k) && k >= 2)) {
    throw new RangeError(`group size k must be an integer ≥ 2, got ${k}`);
  }
  const { rows: T, cols: D, data } = f;
  const z = Array.from({ length: T }, (_, t) => standardizedRanks(data.subarray(t * D, (t + 1) * D)));
  const adjacent = new Mean(), first = new Mean(), sum = new Mean();
  for (let t = 0; t + 1 < T; t++) adjacent.add(rankDot(z[t], z[t + 1]));
  const colSums = new Float64Array(D);
  for (let g = 0; g < T; g += k) {
    const end = Math.min(T, g + k);
    for (let t = g + 1; t < end; t++) first.add(rankDot(z[t], z[g]));
    if (end - g < 2) continue;
    colSums.fill(0);
    for (let t = g; t < end; t++) for (let c = 0; c < D; c++) colSums[c] += data[t * D + c];
    const zs = standardizedRanks(colSums);
    for (let t = g; t < end; t++) sum.add(rankDot(z[t], zs));
  }
  return { adjacent: adjacent.value(), group_first: first.value(), group_sum: sum.value() };
}

/** A running mean that skips NaN (undefined correlations). */
class Mean {
  #sum = 0;
  #n = 0;
  add(v: number): void {
    if (Number.isNaN(v)) return;
    this.#sum += v;
    this.#n++;
  }
  value(): number {
    return this.#n ? this.#sum / this.#n : NaN;
  }
}
