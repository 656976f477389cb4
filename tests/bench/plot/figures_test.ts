import { assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import {
  accuracyVsErrorBound,
  accuracyVsEvictionRate,
  type Built,
  EB_SWEEP_FILE,
  FIGURES,
  RATE_TABLE_FILE,
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

Deno.test("every figure says why it is skipped in an empty results directory", async () => {
  const dir = await resultsDir({});
  for (const f of FIGURES) {
    const b = await f.build(dir);
    assertEquals("skipped" in b, true, f.name);
  }
  await Deno.remove(dir, { recursive: true });
});
