import { assertEquals } from "@std/assert";
import { planRecency } from "./plan_recency.ts";
import { planUniform } from "./plan_uniform.ts";
import { assertPlanInvariants, randomMetric } from "./_testing.ts";

Deno.test("planRecency() keeps the sink and the last positions of every head", () => {
  const shape = { nLayers: 2, nKvHeads: 2, nPos: 512 };
  const metric = randomMetric(2048, 2);
  for (const rate of [1, 2, 4, 8, 16, 32, 64]) {
    const plan = planRecency(metric, shape, { rate });
    assertPlanInvariants(plan, { blockSize: 16, protectedWindow: 64, sink: 4 });
    const n = plan.kept[0].length;
    const expected = [0, 1, 2, 3, ...Array.from({ length: n - 4 }, (_, i) => 512 - (n - 4) + i)];
    for (const k of plan.kept) assertEquals(Array.from(k), expected, `rate ${rate}`);
    // Same kept counts as the uniform baseline, so the two compare at equal memory.
    assertEquals(plan.keptCount, planUniform(metric, shape, { rate }).keptCount);
  }
});
