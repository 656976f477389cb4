import { assert, assertEquals } from "@std/assert";
import { planUniform } from "./plan_uniform.ts";
import { assertPlanInvariants, randomMetric } from "./_testing.ts";

const DEFAULTS = { blockSize: 16, protectedWindow: 64, sink: 4 };

Deno.test("planUniform() gives every head the same kept count", () => {
  const shape = { nLayers: 3, nKvHeads: 4, nPos: 1000 };
  const metric = randomMetric(12 * 1000, 21);
  for (const rate of [1, 2, 4, 8, 16, 32, 64]) {
    const plan = planUniform(metric, shape, { rate });
    assertPlanInvariants(plan, DEFAULTS);
    const counts = new Set(plan.kept.map((k) => k.length));
    assertEquals(counts.size, 1, `rate ${rate}`);
    const perHead = plan.kept[0].length;
    const want = Math.floor(1000 / rate);
    const floor = 1000 - Math.floor((1000 - 68) / 16) * 16;
    // Within one block per head of the target, unless protection holds more.
    assert(
      perHead <= Math.max(want, floor) && perHead > Math.max(want, floor) - 16,
      `rate ${rate}: ${perHead}`,
    );
    assertEquals(new Set(plan.keptFractionPerLayer).size, 1);
  }
});

Deno.test("planUniform() evicts each head's lowest-metric KVs", () => {
  const shape = { nLayers: 1, nKvHeads: 2, nPos: 128 };
  const metric = randomMetric(256, 4);
  const plan = planUniform(metric, shape, { rate: 4, protectedWindow: 8 });
  for (let h = 0; h < 2; h++) {
    const kept = new Set(plan.kept[h]);
    const row = metric.subarray(h * 128, (h + 1) * 128);
    const evictedMax = Math.max(...Array.from(row.subarray(4, 120)).filter((_, i) => !kept.has(i + 4)));
    const keptMin = Math.min(...Array.from(row.subarray(4, 120)).filter((_, i) => kept.has(i + 4)));
    assert(evictedMax <= keptMin);
  }
});

Deno.test("planUniform() with maxCacheTokens caps every head", () => {
  const shape = { nLayers: 2, nKvHeads: 2, nPos: 512 };
  const plan = planUniform(randomMetric(2048, 8), shape, { maxCacheTokens: 100 });
  for (const k of plan.kept) assertEquals(k.length, 512 - Math.ceil(412 / 16) * 16);
});
