/**
 * bench:two-gpu drawn: time to first token and decode tokens/s for each configuration, a bar per
 * layout (prefill and decode on two GPUs, on one, or unpinned), sequential requests above and
 * concurrent ones below, from every `two_gpu_*.json` of the results directory.
 * @module
 */
import type { TopLevelSpec } from "vega-lite";
import { checkRows, CONFIG, type Figure, filesMatching, readJson, SCHEMA } from "./common.ts";

/** The fields of a bench:two-gpu row that are drawn. */
export interface TwoGpuRow {
  layout: string;
  config: string;
  phase: string;
  ttft_ms: number | null;
  decode_tok_s: number | null;
}

/** TTFT (left) and decode tokens/s (right) per configuration, a bar per layout, a row per phase. */
export function twoGpuSpec(rows: TwoGpuRow[], label: string): TopLevelSpec {
  const values = rows.flatMap((r) => [
    { ...r, measure: "TTFT, ms (lower is better)", value: r.ttft_ms },
    { ...r, measure: "decode tokens/s (higher is better)", value: r.decode_tok_s },
  ]).filter((v) => v.value !== null);
  return {
    $schema: SCHEMA,
    title: {
      text: "Prefill and decode on two GPUs against one",
      subtitle: [`bench:two-gpu, ${label}: medians; concurrent decode tokens/s is the batch's total`],
    },
    data: { values },
    config: CONFIG,
    facet: {
      row: { field: "phase", type: "nominal", title: null },
      column: { field: "measure", type: "nominal", title: null },
    },
    resolve: { scale: { x: "independent" } },
    spec: {
      width: 260,
      mark: { type: "bar" },
      encoding: {
        y: { field: "config", type: "nominal", title: null },
        yOffset: { field: "layout", type: "nominal" },
        x: { field: "value", type: "quantitative", title: null },
        color: { field: "layout", type: "nominal", title: "layout" },
      },
    },
  } as TopLevelSpec;
}

export const twoGpu: Figure = {
  name: "two_gpu",
  title: "Prefill and decode on two GPUs against one",
  async build(dir) {
    const files = (await filesMatching(dir, /^two_gpu_.+\.json$/)).sort();
    if (files.length === 0) {
      return { skipped: "no two_gpu_*.json (deno task bench:two-gpu on a two-GPU host)" };
    }
    const rows: TwoGpuRow[] = [];
    for (const file of files) {
      const run = await readJson(dir, file) as { label?: string; rows?: unknown };
      const label = run.label ?? file;
      rows.push(
        ...checkRows<TwoGpuRow>(file, run.rows, { string: ["layout", "config", "phase"] })
          .map((r) => ({ ...r, layout: files.length > 1 ? `${label}: ${r.layout}` : r.layout })),
      );
    }
    return { spec: twoGpuSpec(rows, files.join(", ")), rows: rows.length, sources: files };
  },
};
