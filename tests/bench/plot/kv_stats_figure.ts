/**
 * eval:kv-stats drawn: per model (or sample set), the channel-order rank correlation by layer for
 * K and V, between adjacent tokens and across a sort-index group of k tokens (against its first
 * token), from every `kv_stats_*.json` of the results directory. Each point is the mean over the
 * layer's KV heads (and samples).
 * @module
 */
import type { SummaryRow } from "../kv_stats/summary.ts";
import { CONFIG, type Figure, readJson, SCHEMA } from "./common.ts";
import type { TopLevelSpec } from "vega-lite";

/** The files this figure reads. */
export const KV_STATS_FILES = /^kv_stats_.*\.json$/;

/** The parts of one source of eval:kv-stats' JSON that are drawn. */
interface KvStatsSource {
  name: string;
  shape: number[];
  summary: SummaryRow[];
}

export const kvRankCorrelationByLayer: Figure = {
  name: "kv_rank_correlation_by_layer",
  title: "Channel-order rank correlation of K and V, by layer",
  async build(dir) {
    const files = [...Deno.readDirSync(dir)].filter((e) => e.isFile && KV_STATS_FILES.test(e.name))
      .map((e) => e.name).sort();
    const values: Record<string, unknown>[] = [];
    let k: number | undefined;
    for (const file of files) {
      const d = await readJson(dir, file) as { settings?: { k?: number }; sources?: KvStatsSource[] };
      if (!Array.isArray(d?.sources)) throw new Error(`${file}: no 'sources' array`);
      k ??= d.settings?.k;
      for (const s of d.sources) {
        if (!Array.isArray(s.summary)) throw new Error(`${file}: source '${s.name}' has no 'summary' array`);
        const source = `${s.name} [${s.shape.join(", ")}]`;
        for (const r of s.summary) {
          if (r.layer === null) continue;
          const at = { source, kind: r.kind, layer: r.layer };
          values.push({ ...at, stat: "adjacent tokens", rho: r.stats.rank_corr_adjacent.mean });
          values.push({
            ...at,
            stat: `group's first token (k = ${k})`,
            rho: r.stats.rank_corr_group_first.mean,
          });
        }
      }
    }
    if (!values.length) return { skipped: "no kv_stats_*.json (deno task eval:kv-stats)" };
    return {
      spec: {
        $schema: SCHEMA,
        title: {
          text: this.title,
          subtitle: [
            `eval:kv-stats, ${files.join(", ")};`,
            "Spearman's ρ between tokens' channel orders, mean over KV heads (and samples);",
            "1 = every token sorts its channels the same way (one sort index fits all), 0 = unrelated",
          ],
        },
        data: { values },
        config: CONFIG,
        facet: {
          column: { field: "source", type: "nominal", title: "[layers, tokens, KV heads, head_dim]" },
        },
        spec: {
          width: 260,
          height: 220,
          mark: { type: "line", point: true },
          encoding: {
            x: { field: "layer", type: "ordinal", title: "layer" },
            y: {
              field: "rho",
              type: "quantitative",
              title: "rank correlation ρ",
              scale: { domain: [-0.1, 1] },
            },
            color: { field: "kind", type: "nominal", title: "tensor" },
            // the legend draws points, so the shape says which line is which
            strokeDash: { field: "stat", type: "nominal", title: "against" },
            shape: { field: "stat", type: "nominal", title: "against" },
          },
        },
        resolve: { scale: { x: "independent" } },
      } as TopLevelSpec,
      rows: values.length,
      sources: files,
    };
  },
};
