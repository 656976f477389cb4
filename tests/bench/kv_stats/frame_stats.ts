/**
 * Every statistic of one frame in one flat record (the rows of eval:kv-stats' JSON): the rank
 * correlations (`rank_correlation.ts`), the magnitude stability (`magnitude_stability.ts`) and
 * the outlier channels (`outlier_channels.ts`); each file defines its numbers.
 * @module
 */
import { checkFrame, type TokenChannels } from "./frame.ts";
import { rankCorrelation } from "./rank_correlation.ts";
import { defaultQ, magnitudeStability } from "./magnitude_stability.ts";
import { DEFAULT_OUTLIER_FACTOR, outlierChannels } from "./outlier_channels.ts";

/** The statistics' settings. */
export interface StatsOptions {
  /** Tokens sharing one sort index (KVSort's k; default 32). */
  k?: number;
  /** Size of the top set of `topq_overlap` (default max(1, round(D/8))). */
  q?: number;
  /** Outlier threshold as a multiple of the median channel's mean |x| (default 4). */
  outlierFactor?: number;
}

/** The statistics of one frame; NaN stays NaN here and becomes null in the JSON. */
export interface FrameStats {
  rank_corr_adjacent: number;
  rank_corr_group_first: number;
  rank_corr_group_sum: number;
  magnitude_halves_corr: number;
  topq_overlap: number;
  topq_chance: number;
  outlier_count: number;
  outlier_energy_share: number;
  outlier_persistence: number | null;
  outlier_pair_persistence: number | null;
  outlier_channels: number[];
}

/** The names of {@link FrameStats}' numeric statistics, in the order tables show them. */
export const STAT_NAMES = [
  "rank_corr_adjacent",
  "rank_corr_group_first",
  "rank_corr_group_sum",
  "magnitude_halves_corr",
  "topq_overlap",
  "topq_chance",
  "outlier_count",
  "outlier_energy_share",
  "outlier_persistence",
  "outlier_pair_persistence",
] as const satisfies readonly (keyof FrameStats)[];

export type StatName = typeof STAT_NAMES[number];

/** Each statistic in one sentence (written into the JSON beside the numbers). */
export const STAT_DEFINITIONS: Record<StatName, string> = {
  rank_corr_adjacent: "mean over t of Spearman's rho between the channel values of tokens t and t+1",
  rank_corr_group_first:
    "tokens in groups of k; mean over tokens t not first in their group of Spearman's rho between token t and the group's first token (lags 1..k-1)",
  rank_corr_group_sum:
    "mean over tokens of Spearman's rho between token t and the column sums of its group of k (what the shared sort index sorts)",
  magnitude_halves_corr:
    "Spearman's rho over channels between per-channel mean |x| of the first half of the tokens and of the second half",
  topq_overlap:
    "S = the q channels of largest mean |x| over the frame; mean over tokens of |top-q channels of |x[t]| intersected with S| / q",
  topq_chance: "q / head_dim: topq_overlap when no channel is persistently larger",
  outlier_count: "channels whose mean |x| exceeds factor x the median channel's mean |x|",
  outlier_energy_share: "the outlier channels' share of the frame's sum of x^2",
  outlier_persistence:
    "outlier sets of the two halves of the tokens compared as |A and B| / |A or B| (Jaccard); null when neither half has one",
  outlier_pair_persistence:
    "outlier_persistence with each channel taken as its rotary pair c mod D/2 (keys after RoPE, rotate-half layout); null when neither half has one",
};

/** All statistics of `f`; `RangeError` for a malformed frame or a non-finite value. */
export function frameStats(f: TokenChannels, opts: StatsOptions = {}): FrameStats {
  checkFrame(f);
  const r = rankCorrelation(f, opts.k ?? 32);
  const m = magnitudeStability(f, opts.q ?? defaultQ(f.cols));
  const o = outlierChannels(f, opts.outlierFactor ?? DEFAULT_OUTLIER_FACTOR);
  return {
    rank_corr_adjacent: r.adjacent,
    rank_corr_group_first: r.group_first,
    rank_corr_group_sum: r.group_sum,
    magnitude_halves_corr: m.halves_corr,
    topq_overlap: m.topq_overlap,
    topq_chance: m.topq_chance,
    outlier_count: o.count,
    outlier_energy_share: o.energy_share,
    outlier_persistence: o.persistence,
    outlier_pair_persistence: o.pair_persistence,
    outlier_channels: o.channels,
  };
}
