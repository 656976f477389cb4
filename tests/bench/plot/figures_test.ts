import { assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import {
  accuracyVsErrorBound,
  accuracyVsEvictionRate,
  type Built,
  decodeThroughput,
  EB_SWEEP_FILE,
  FIGURES,
  RATE_TABLE_FILE,
  rateTableFile,
} from "./figures.ts";
import { renderSvg } from "./render.ts";

const taskEval = (errorBound: number, evictionRate: number, maxPool?: number) => ({
  model: "m",
  kv: { codec: "kvsort", errorBound, errorMode: "rel", evictionRate, eviction: "kvcompress", maxPool },
  rows: [
    { task: "arithmetic", n: 40, accuracy: 0.9, ci95: [0.8, 0.95] },
    { task: "passkey@256", n: 40, accuracy: 1, ci95: [0.9, 1] },
  ],
});

async function resultsDir(files: Record<string, unknown>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "kvrelay-plots-" });
  for (const [name, body] of Object.entries(files)) {
    await Deno.writeTextFile(`${dir}/${name}`, JSON.stringify(body));
  }
  return dir;
}

const sources = (b: Built) => "skipped" in b ? b.skipped : b.sources;

Deno.test("accuracyVsErrorBound draws the task evaluations until the error-bound sweep exists, then the sweep", async () => {
  const dir = await resultsDir({
    "task_eval_a.json": taskEval(0.01, 1),
    "task_eval_b.json": taskEval(0.1, 1),
    "task_eval_c.json": taskEval(0.01, 4, 7), // evicts: not in this figure
  });
  const before = await accuracyVsErrorBound.build(dir);
  assertEquals(sources(before), ["task_eval_a.json", "task_eval_b.json"]);
  assertEquals(
    "rows" in before && before.rows,
    2,
    "one point per run and task family (passkey@256 left out)",
  );
  await Deno.writeTextFile(
    `${dir}/${EB_SWEEP_FILE}`,
    JSON.stringify({
      rows: [0.001, 0.01, 0.1].map((error_bound) => ({
        error_bound,
        task: "passkey",
        accuracy: 1,
        ci95_low: 0.9,
        ci95_high: 1,
      })),
    }),
  );
  const after = await accuracyVsErrorBound.build(dir);
  assertEquals(sources(after), [EB_SWEEP_FILE]);
  assertEquals("rows" in after && after.rows, 3);
  if ("spec" in after) assertStringIncludes(await renderSvg(after.spec), "<svg");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("accuracyVsEvictionRate takes the rate table when present and refuses a malformed one by name", async () => {
  const dir = await resultsDir({
    "task_eval_r1.json": taskEval(0.01, 1),
    "task_eval_r4.json": taskEval(0.01, 4, 7),
    "task_eval_r4_pool0.json": taskEval(0.01, 4),
  });
  const fallback = await accuracyVsEvictionRate.build(dir);
  // rate 1 evicts nothing: its run starts both policies' lines
  assertEquals("rows" in fallback && fallback.rows, 4);
  await Deno.writeTextFile(
    `${dir}/${RATE_TABLE_FILE}`,
    JSON.stringify({
      rows: [{ rate: 2, policy: "kvcompress", task: "passkey", accuracy: 1, ci95_low: 0.9 }],
    }),
  );
  await assertRejects(
    () => accuracyVsEvictionRate.build(dir),
    Error,
    `${RATE_TABLE_FILE}: rows[0].ci95_high is not a number`,
  );
  await Deno.remove(dir, { recursive: true });
});

const rateRow = (table: string, task: string, policy: string, rate: number, accuracy: number) => ({
  table,
  rate,
  policy,
  task,
  accuracy,
  n: 5,
  ci95_low: Math.max(0, accuracy - 0.3),
  ci95_high: Math.min(1, accuracy + 0.3),
  kept_fraction: 1 / rate,
  peak_cache_tokens: 100 / rate,
  prompt_tokens: 100,
});

/** A small eval:rates table: two settings tables, two tasks plus a passkey length row, two policies. */
const rateTable = () => ({
  rows: ["defaults", "paper"].flatMap((table) =>
    ["passkey", "passkey@512", "multikey"].flatMap((task) =>
      ["kvcompress", "recency"].flatMap((policy) =>
        [1, 4].map((rate) => rateRow(table, task, policy, rate, 1 / rate))
      )
    )
  ),
});

Deno.test("accuracyVsEvictionRate draws the rate table a panel per task and settings table, task families only", async () => {
  const dir = await resultsDir({
    "kv_compress_rate_table_box.json": rateTable(),
    "task_eval_r1.json": taskEval(0.01, 1),
  });
  const b = await accuracyVsEvictionRate.build(dir);
  assertEquals(sources(b), ["kv_compress_rate_table_box.json"]);
  if (!("spec" in b)) throw new Error("not drawn");
  // 2 tables x 2 task families x 2 policies x 2 rates; passkey@512 is passkey's breakdown
  assertEquals(b.rows, 16);
  const spec = b.spec as unknown as {
    title: { subtitle: string[] };
    facet: Record<string, { field: string; sort: string[] }>;
    data: { values: { task: string }[] };
  };
  assertEquals(spec.facet.column.field, "task");
  assertEquals(spec.facet.column.sort, ["multikey", "passkey"]);
  assertEquals(spec.facet.row.field, "table");
  assertEquals(spec.facet.row.sort, ["paper", "defaults"], "the paper's settings first");
  assertEquals(spec.data.values.some((v) => v.task === "passkey@512"), false);
  assertStringIncludes(spec.title.subtitle.join(" "), "kv_compress_rate_table_box.json");
  const svg = await renderSvg(b.spec);
  for (const label of ["paper", "defaults", "multikey", "passkey", "kvcompress", "recency"]) {
    assertStringIncludes(svg, `>${label}<`);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("accuracyVsEvictionRate refuses a rate-table row without its settings table, by field", async () => {
  const { table: _, ...noTable } = rateRow("paper", "passkey", "uniform", 2, 0.5);
  const dir = await resultsDir({
    [RATE_TABLE_FILE]: { rows: [rateRow("paper", "passkey", "uniform", 1, 1), noTable] },
  });
  await assertRejects(
    () => accuracyVsEvictionRate.build(dir),
    Error,
    `${RATE_TABLE_FILE}: rows[1].table is not a string`,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("rateTableFile() prefers kv_compress_rate_table.json, then an H200 run, then the newest", async () => {
  const dir = await resultsDir({});
  assertEquals(await rateTableFile(dir), undefined);
  const write = async (name: string, mtimeS: number) => {
    await Deno.writeTextFile(`${dir}/${name}`, "{}");
    await Deno.utime(`${dir}/${name}`, mtimeS, mtimeS);
  };
  await write("kv_compress_rate_table_old-box.json", 1000);
  await write("kv_compress_rate_table_new-box.json", 2000);
  assertEquals(await rateTableFile(dir), "kv_compress_rate_table_new-box.json");
  await write("kv_compress_rate_table_h200.json", 500);
  assertEquals(await rateTableFile(dir), "kv_compress_rate_table_h200.json");
  await write(RATE_TABLE_FILE, 100);
  assertEquals(await rateTableFile(dir), RATE_TABLE_FILE);
  await Deno.remove(dir, { recursive: true });
});

const throughputRun = (scale: number) => ({
  budget: { blocks: 5120, blockSize: 16, fp16MiB: 20 },
  promptLen: 1024,
  gen: 256,
  rows: [
    { rate: 1, decodeEviction: false, sequences: 4, tokensPerS: 100 * scale },
    { rate: 4, decodeEviction: false, sequences: 10, tokensPerS: 200 * scale },
    { rate: 4, decodeEviction: true, sequences: 14, tokensPerS: 300 * scale },
  ],
  attentionCost: [{ kind: "attention-cost", batch: 1, past: 1024, msWith: 1, msWithout: 1, overhead: 0 }],
});

Deno.test("decodeThroughput draws a column per run, rate 1 starting both lines", async () => {
  const dir = await resultsDir({
    "decode_throughput_box-a.json": throughputRun(1),
    "decode_throughput_h200-b.json": throughputRun(10),
  });
  const b = await decodeThroughput.build(dir);
  assertEquals(sources(b), ["decode_throughput_box-a.json", "decode_throughput_h200-b.json"]);
  if (!("spec" in b)) throw new Error("not drawn");
  // per run: rate 1 twice (both lines), rate 4 once per line
  assertEquals(b.rows, 8);
  const values = (b.spec as unknown as { data: { values: Record<string, unknown>[] } }).data.values;
  assertEquals(
    values.filter((v) => v.rate === 1).map((v) => `${v.machine}|${v.eviction}|${v.sequences}`),
    [
      "box-a, 20 MiB fp16 KV, 1024 + 256 tokens|decode-time eviction|4",
      "box-a, 20 MiB fp16 KV, 1024 + 256 tokens|prefill eviction only|4",
      "h200-b, 20 MiB fp16 KV, 1024 + 256 tokens|decode-time eviction|4",
      "h200-b, 20 MiB fp16 KV, 1024 + 256 tokens|prefill eviction only|4",
    ],
  );
  assertEquals(
    values.find((v) =>
      v.machine === "h200-b, 20 MiB fp16 KV, 1024 + 256 tokens" && v.rate === 4 &&
      v.eviction === "decode-time eviction"
    )?.tokens_per_s,
    3000,
  );
  const svg = await renderSvg(b.spec);
  for (const label of ["sequences held (log)", "generated tokens/s (log)", "prefill eviction only"]) {
    assertStringIncludes(svg, label);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("decodeThroughput refuses a cell without its eviction flag, by file and field", async () => {
  const run = throughputRun(1);
  const dir = await resultsDir({
    "decode_throughput_box.json": { ...run, rows: [...run.rows, { rate: 8, sequences: 3, tokensPerS: 1 }] },
  });
  await assertRejects(
    () => decodeThroughput.build(dir),
    Error,
    "decode_throughput_box.json: rows[3].decodeEviction is not a boolean",
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("every figure says why it is skipped in an empty results directory", async () => {
  const dir = await resultsDir({});
  for (const f of FIGURES) {
    const b = await f.build(dir);
    assertEquals("skipped" in b, true, f.name);
  }
  await Deno.remove(dir, { recursive: true });
});
