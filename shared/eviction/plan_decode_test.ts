import { assert, assertEquals, assertThrows } from "@std/assert";
import { planDecodeEviction } from "./plan_decode.ts";
import { planKvCompress } from "./plan_kv_compress.ts";
import { capPlan } from "./cap_plan.ts";
import { lcg, randomMetric } from "./_testing.ts";

type Policy = "kvcompress" | "uniform" | "recency";
const POLICIES: Policy[] = ["kvcompress", "uniform", "recency"];

/** Ragged heads of random lengths and heavy-tailed metric. */
function raggedHeads(heads: number, seed: number, min = 20, max = 400): Float32Array[] {
  const rnd = lcg(seed);
  return Array.from({ length: heads }, (_, h) => {
    const n = min + Math.floor(rnd() * (max - min));
    return randomMetric(n, seed * 131 + h);
  });
}

Deno.test("planDecodeEviction() drops whole blocks, never a head's sink, window or floor", () => {
  for (const policy of POLICIES) {
    for (let seed = 1; seed <= 30; seed++) {
      const metric = raggedHeads(8, seed);
      const rnd = lcg(seed + 999);
      const o = {
        policy,
        blockSize: [1, 4, 16][seed % 3],
        protectedWindow: Math.floor(rnd() * 40),
        sink: Math.floor(rnd() * 6),
        floor: Math.floor(rnd() * 150),
        targetKept: Math.floor(rnd() * 1500),
        headCap: seed % 2 ? 60 + Math.floor(rnd() * 200) : undefined,
      };
      const plan = planDecodeEviction(metric, o);
      let kept = 0;
      plan.drop.forEach((d, h) => {
        const n = metric[h].length;
        assertEquals(d.length % o.blockSize, 0, "whole blocks");
        for (let i = 0; i < d.length; i++) {
          assert(i === 0 || d[i] > d[i - 1], "ascending, unique");
          assert(
            d[i] >= Math.min(o.sink, n) && d[i] < n - o.protectedWindow,
            `row ${d[i]} of ${n} is protected`,
          );
        }
        const left = n - d.length;
        assert(left >= Math.min(n, Math.max(o.blockSize, o.floor)), `head ${h} below its floor: ${left}`);
        if (o.headCap !== undefined && left > o.headCap) {
          // only when nothing more could go
          const evictable = Math.max(0, n - o.protectedWindow - Math.min(o.sink, n));
          const floorRoom = n - Math.min(n, Math.max(o.blockSize, o.floor));
          assert(d.length + o.blockSize > Math.min(evictable, floorRoom), `head ${h} over its cap`);
        }
        kept += left;
      });
      assertEquals(plan.keptCount, kept);
    }
  }
});

Deno.test("planDecodeEviction() meets the target within a block when floors allow it", () => {
  for (let seed = 1; seed <= 20; seed++) {
    const metric = raggedHeads(6, seed, 200, 600);
    const total = metric.reduce((n, m) => n + m.length, 0);
    const target = Math.floor(total / 4);
    const o = { blockSize: 16, protectedWindow: 8, sink: 0, floor: 16, targetKept: target };
    const kc = planDecodeEviction(metric, { ...o, policy: "kvcompress" });
    assert(
      kc.keptCount <= target && kc.keptCount > target - 16,
      `kvcompress kept ${kc.keptCount} of ${target}`,
    );
    for (const policy of ["uniform", "recency"] as const) {
      const p = planDecodeEviction(metric, { ...o, policy });
      const per = Math.floor(target / metric.length);
      p.drop.forEach((d, h) => assert(metric[h].length - d.length <= per, `${policy} head ${h}`));
    }
  }
});

Deno.test("planDecodeEviction() on equal-length heads is planKvCompress", () => {
  const nPos = 256, heads = 6;
  const flat = randomMetric(heads * nPos, 7);
  const rows = Array.from({ length: heads }, (_, h) => flat.subarray(h * nPos, (h + 1) * nPos));
  for (const rate of [2, 4, 8]) {
    const o = { blockSize: 16, protectedWindow: 8, sink: 0, floor: 16 };
    const ref = planKvCompress(flat, { nLayers: 2, nKvHeads: 3, nPos }, { ...o, rate });
    const got = planDecodeEviction(rows, {
      ...o,
      policy: "kvcompress",
      targetKept: Math.floor(heads * nPos / rate),
    });
    got.drop.forEach((d, h) => {
      const gone = new Set(d);
      const kept = Array.from({ length: nPos }, (_, p) => p).filter((p) => !gone.has(p));
      assertEquals(kept, [...ref.kept[h]], `head ${h} at rate ${rate}`);
    });
  }
});

Deno.test("planDecodeEviction() evicts the lowest-metric blocks across heads first", () => {
  // Head 0 all high, head 1 all low: every block to go comes from head 1.
  const metric = [new Float32Array(64).fill(1), new Float32Array(64).fill(1e-6)];
  const plan = planDecodeEviction(metric, {
    policy: "kvcompress",
    blockSize: 8,
    protectedWindow: 8,
    sink: 0,
    floor: 8,
    targetKept: 96,
  });
  assertEquals(plan.drop[0].length, 0);
  assertEquals([...plan.drop[1]], Array.from({ length: 32 }, (_, i) => i));
});

Deno.test("planDecodeEviction() refuses options out of range", () => {
  const m = [new Float32Array(8)];
  const o = {
    policy: "kvcompress" as const,
    blockSize: 4,
    protectedWindow: 0,
    sink: 0,
    floor: 0,
    targetKept: 4,
  };
  assertThrows(() => planDecodeEviction(m, { ...o, blockSize: 0 }), RangeError);
  assertThrows(() => planDecodeEviction(m, { ...o, targetKept: -1 }), RangeError);
  assertThrows(() => planDecodeEviction(m, { ...o, headCap: 1.5 }), RangeError);
});

Deno.test("capPlan() brings every head of a plan under max_cache_tokens", () => {
  const shape = { nLayers: 2, nKvHeads: 2, nPos: 512 };
  // Heads of very different importance: planKvCompress alone keeps far more in some.
  const metric = new Float32Array(4 * 512).map((_, i) => ((i >> 9) + 1) ** 4 * randomMetric(1, i)[0]);
  const o = { blockSize: 16, protectedWindow: 8, sink: 0, floor: 16 };
  const plan = planKvCompress(metric, shape, { ...o, maxCacheTokens: 128 });
  assert(plan.kept.some((k) => k.length > 128), "the uncapped plan exceeds the cap somewhere");
  const capped = capPlan(plan, metric, 128, { ...o, policy: "kvcompress" });
  for (let h = 0; h < 4; h++) {
    assert(capped.kept[h].length <= 128, `head ${h} keeps ${capped.kept[h].length}`);
    const before = new Set(plan.kept[h]);
    for (const p of capped.kept[h]) assert(before.has(p), "capping only removes");
  }
  assertEquals(capped.keptCount, capped.kept.reduce((n, k) => n + k.length, 0));
});
