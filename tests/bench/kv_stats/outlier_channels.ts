/**
 * Outlier channels: the few channels of a head whose magnitude dwarfs the rest (the persistent
 * K channels of Llama-class models that KIVI quantizes per channel and KVSort's sort exploits).
 *
 * For a frame x[t, c], m[c] = mean over t of |x[t, c]|; channel c is an outlier when
 * m[c] > factor × median over channels of m (factor 4 unless given). Reported:
 * - `count`: how many channels are outliers;
 * - `energy_share`: their share of the frame's energy, Σ x² over their values ÷ Σ x² over all;
 * - `persistence`: the outlier sets found on the first ⌊T/2⌋ tokens and on the rest, compared
 *   as |A ∩ B| / |A ∪ B| (Jaccard): 1 when the same channels stand out in both halves, null when
 *   neither half has an outlier;
 * - `pair_persistence`: the same with each channel taken as its rotary pair (c mod D/2). Keys
 *   are stored after RoPE in the rotate-half layout, where channels c and c + D/2 turn into each
 *   other as the position advances: a slow pair moves its energy between its two channels over
 *   the context, so it can stand out at c in one half and at c + D/2 in the other. For V (no
 *   rotation) it only merges two unrelated channels; read `persistence` there.
 * @module
 */
import { channelMeanAbs, type TokenChannels } from "./frame.ts";

/** Outlier channels of one frame. */
export interface OutlierChannels {
  channels: number[];
  count: number;
  energy_share: number;
  persistence: number | null;
  pair_persistence: number | null;
}

/** The default threshold: 4× the median channel's mean |x|. */
export const DEFAULT_OUTLIER_FACTOR = 4;

/** {@link OutlierChannels} of `f` at `factor` × the median channel. */
export function outlierChannels(f: TokenChannels, factor = DEFAULT_OUTLIER_FACTOR): OutlierChannels {
  if (!(factor > 1)) throw new RangeError(`the outlier factor must be above 1, got ${factor}`);
  const { rows: T, cols: D, data } = f;
  const channels = outliersOf(channelMeanAbs(f), factor);
  const energy = new Float64Array(D);
  for (let i = 0; i < data.length; i++) energy[i % D] += data[i] * data[i];
  const total = energy.reduce((a, b) => a + b, 0);
  const held = channels.reduce((a, c) => a + energy[c], 0);
  const half = Math.floor(T / 2);
  const a = new Set(outliersOf(channelMeanAbs(f, 0, half), factor));
  const b = new Set(outliersOf(channelMeanAbs(f, half, T), factor));
  const pair = (set: Set<number>) => new Set([...set].map((c) => c % (D >> 1)));
  return {
    channels,
    count: channels.length,
    energy_share: total > 0 ? held / total : 0,
    persistence: jaccard(a, b),
    pair_persistence: D % 2 ? null : jaccard(pair(a), pair(b)),
  };
}

/** |a ∩ b| / |a ∪ b|, null when both are empty. */
function jaccard(a: Set<number>, b: Set<number>): number | null {
  const union = new Set([...a, ...b]).size;
  return union ? [...a].filter((c) => b.has(c)).length / union : null;
}

/** The channels whose mean magnitude exceeds `factor` × the median of `m`. */
function outliersOf(m: Float64Array, factor: number): number[] {
  const sorted = Float64Array.from(m).sort();
  const n = sorted.length;
  const median = n % 2 ? sorted[n >> 1] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  const out: number[] = [];
  for (let c = 0; c < n; c++) if (m[c] > factor * median) out.push(c);
  return out;
}
