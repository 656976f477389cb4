import { assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { kvRankCorrelationByLayer } from "./kv_stats_figure.ts";
import { renderSvg } from "./render.ts";
import { spread } from "../kv_stats/summary.ts";

const summaryRow = (kind: "K" | "V", layer: number | null, adjacent: number) => ({
  kind,
  layer,
  frames: 2,
  stats: { rank_corr_adjacent: spread([adjacent]), rank_corr_group_first: spread([adjacent / 2]) },
});

async function resultsDir(files: Record<string, unknown>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "kvrelay-plots-" });
  for (const [name, body] of Object.entries(files)) {
    await Deno.writeTextFile(`${dir}/${name}`, JSON.stringify(body));
  }
  return dir;
}

Deno.test("kvRankCorrelationByLayer draws a column per source from every kv_stats_*.json, layers only", async () => {
  const source = (name: string) => ({
    name,
    shape: [2, 100, 1, 8],
    summary: [
      summaryRow("K", 0, 0.8),
      summaryRow("K", 1, 0.6),
      summaryRow("K", null, 0.7),
      summaryRow("V", 0, 0.1),
    ],
  });
  const dir = await resultsDir({
    "kv_stats_b.json": { settings: { k: 32 }, sources: [source("model-b")] },
    "kv_stats_a.json": { settings: { k: 32 }, sources: [source("model-a")] },
    "codec.json": { rows: [] },
  });
  const b = await kvRankCorrelationByLayer.build(dir);
  if (!("spec" in b)) throw new Error(b.skipped);
  assertEquals(b.sources, ["kv_stats_a.json", "kv_stats_b.json"]);
  assertEquals(b.rows, 2 * 3 * 2, "2 sources x 3 layer rows x 2 statistics");
  const svg = await renderSvg(b.spec);
  for (const label of ["model-a [2, 100, 1, 8]", "adjacent tokens", "group's first token (k = 32)"]) {
    assertStringIncludes(svg, label);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("kvRankCorrelationByLayer is skipped without results and refuses a file without sources", async () => {
  const empty = await resultsDir({});
  assertEquals(await kvRankCorrelationByLayer.build(empty), {
    skipped: "no kv_stats_*.json (deno task eval:kv-stats)",
  });
  const bad = await resultsDir({ "kv_stats_x.json": { rows: [] } });
  await assertRejects(
    () => kvRankCorrelationByLayer.build(bad),
    Error,
    "kv_stats_x.json: no 'sources' array",
  );
  await Deno.remove(empty, { recursive: true });
  await Deno.remove(bad, { recursive: true });
});
