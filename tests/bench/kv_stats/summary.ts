/**
 * Frame statistics gathered per tensor kind (K, V), per layer and over all layers: the mean,
 * least and greatest value of each statistic over the frames (every KV head, and every sample
 * when there are several), undefined values (NaN, null) left out and counted in `n`.
 * @module
 */
import { type FrameStats, STAT_NAMES, type StatName } from "./frame_stats.ts";
import type { KvKind } from "./frame.ts";

/** One frame's statistics and where it comes from. */
export interface FrameStatsRow extends FrameStats {
  kind: KvKind;
  sample: string;
  layer: number;
  head: number;
}

/** Mean, min and max of the defined values, and how many there were (all null when none). */
export interface Spread {
  mean: number | null;
  min: number | null;
  max: number | null;
  n: number;
}

/** One line of the summary: a kind and a layer (null: every layer). */
export interface SummaryRow {
  kind: KvKind;
  layer: number | null;
  frames: number;
  stats: Record<StatName, Spread>;
}

/** The spread of the finite values of `xs`. */
export function spread(xs: readonly (number | null)[]): Spread {
  const v = xs.filter((x): x is number => x !== null && Number.isFinite(x));
  if (!v.length) return { mean: null, min: null, max: null, n: 0 };
  return {
    mean: v.reduce((a, b) => a + b, 0) / v.length,
    min: Math.min(...v),
    max: Math.max(...v),
    n: v.length,
  };
}

/** Per kind: one row per layer, in order, then the row over all layers (`layer: null`). */
export function summarize(rows: readonly FrameStatsRow[]): SummaryRow[] {
  const out: SummaryRow[] = [];
  for (const kind of ["K", "V"] as const) {
    const ofKind = rows.filter((r) => r.kind === kind);
    const layers = [...new Set(ofKind.map((r) => r.layer))].sort((a, b) => a - b);
    for (const layer of [...layers, null]) {
      const of = layer === null ? ofKind : ofKind.filter((r) => r.layer === layer);
      if (!of.length) continue;
      const stats = Object.fromEntries(STAT_NAMES.map((s) => [s, spread(of.map((r) => r[s]))]));
      out.push({ kind, layer, frames: of.length, stats: stats as Record<StatName, Spread> });
    }
  }
  return out;
}
