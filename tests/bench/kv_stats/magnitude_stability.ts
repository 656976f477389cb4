/**
 * Whether the same channels carry the large magnitudes all along the context: persistent large
 * channels keep their place in a sorted row whatever the token, which is what lets one sort
 * index serve many tokens (Llama-class K) and what a model without them lacks.
 *
 * For a frame x[t, c] (T tokens, D channels), m[c] = mean over t of |x[t, c]|:
 * - `halves_corr`: Spearman's ρ over channels between m computed on the first ⌊T/2⌋ tokens and
 *   on the rest: 1 when the channels' magnitude order is the same in both halves;
 * - `topq_overlap`: S = the q channels of largest m over the whole frame; the mean over tokens
 *   of |top-q channels of |x[t, ·]| ∩ S| / q. 1 when the same q channels are the largest at
 *   every token; about q/D (`topq_chance`) when magnitudes are exchangeable across channels.
 *   q = max(1, round(D/8)) unless given: 8 of 64 or 16 of 128 channels, 1 of 8.
 * @module
 */
import { channelMeanAbs, type TokenChannels } from "./frame.ts";
import { spearman } from "./spearman.ts";

/** Magnitude stability of one frame. */
export interface MagnitudeStability {
  halves_corr: number;
  topq_overlap: number;
  /** q/D: what `topq_overlap` is when no channel is persistently larger. */
  topq_chance: number;
}

/** The default size of the top set for `cols` channels. */
export function defaultQ(cols: number): number {
  return Math.max(1, Math.round(cols / 8));
}

/** {@link MagnitudeStability} of `f`, with the top `q` channels. */
export function magnitudeStability(f: TokenChannels, q = defaultQ(f.cols)): MagnitudeStability {
  const { rows: T, cols: D, data } = f;
  if (!(Number.isSafeInteger(q) && q >= 1 && q < D)) {
    throw new RangeError(`q must be in 1 … ${D - 1}, got ${q}`);
  }
  const half = Math.floor(T / 2);
  const halves_corr = T >= 2 ? spearman(channelMeanAbs(f, 0, half), channelMeanAbs(f, half, T)) : NaN;
  const top = new Uint8Array(D);
  for (const c of topIndices(channelMeanAbs(f), q)) top[c] = 1;
  let hits = 0;
  const row = new Float64Array(D);
  for (let t = 0; t < T; t++) {
    for (let c = 0; c < D; c++) row[c] = Math.abs(data[t * D + c]);
    for (const c of topIndices(row, q)) hits += top[c];
  }
  return { halves_corr, topq_overlap: T ? hits / (T * q) : NaN, topq_chance: q / D };
}

/** The indices of the `q` largest values (ties to the lower index). */
function topIndices(x: ArrayLike<number>, q: number): number[] {
  return Array.from({ length: x.length }, (_, i) => i).sort((a, b) => x[b] - x[a] || a - b).slice(0, q);
}
