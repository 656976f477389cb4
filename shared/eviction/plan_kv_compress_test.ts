import { assert, assertEquals, assertThrows } from "@std/assert";
import { planKvCompress } from "./plan_kv_compress.ts";
import { assertPlanInvariants, lcg, randomMetric } from "./_testing.ts";
import type { KvShape } from "./types.ts";

const DEFAULTS = { blockSize: 16, protectedWindow: 64, sink: 4 };

/**
 * The reference fork's procedure written out plainly: walk every evictable KV of every
 * head in ascending metric order; a head's block is evicted when its blockSize-th pending
 * KV is reached; stop at the target. Valid for metrics without ties.
 */
function forkWalk(metric: Float32Array, shape: KvShape, o: typeof DEFAULTS & { target: number }): number[] {
  const { nPos } = shape;
  const heads = shape.nLayers * shape.nKvHeads;
  const lo = Math.min(o.sink, nPos);
  const hi = Math.max(lo, nPos - Math.min(o.protectedWindow, nPos));
  const maxBlocks = Math.min(
    Math.floor((hi - lo) / o.blockSize),
    Math.floor((nPos - Math.min(nPos, o.blockSize)) / o.blockSize),
  );
  const all: { m: number; h: number }[] = [];
  for (let h = 0; h < heads; h++) for (let p = lo; p < hi; p++) all.push({ m: metric[h * nPos + p], h });
  all.sort((a, b) => a.m - b.m);
  const pending = new Array<number>(heads).fill(0);
  const blocks = new Array<number>(heads).fill(0);
  let kept = heads * nPos;
  for (const { h } of all) {
    if (kept <= o.target) break;
    if (blocks[h] === maxBlocks) continue;
    if (++pending[h] === o.blockSize) {
      pending[h] = 0;
      blocks[h]++;
      kept -= o.blockSize;
    }
  }
  return blocks;
}

Deno.test("planKvCompress() keeps sink, protected window and one block per head at every rate", () => {
  const shapes = [{ nLayers: 3, nKvHeads: 4, nPos: 300 }, { nLayers: 2, nKvHeads: 2, nPos: 70 }, {
    nLayers: 1,
    nKvHeads: 3,
    nPos: 10,
  }];
  for (const [i, shape] of shapes.entries()) {
    const metric = randomMetric(shape.nLayers * shape.nKvHeads * shape.nPos, i + 1);
    for (const rate of [1, 2, 4, 8, 16, 32, 64]) {
      for (
        const o of [DEFAULTS, { blockSize: 8, protectedWindow: 5, sink: 0 }, {
          blockSize: 1,
          protectedWindow: 0,
          sink: 1,
        }]
      ) {
        assertPlanInvariants(planKvCompress(metric, shape, { ...o, rate }), o);
      }
    }
  }
});

Deno.test("planKvCompress() hits the target within one block when protection allows", () => {
  const shape = { nLayers: 4, nKvHeads: 4, nPos: 1024 };
  const metric = randomMetric(4 * 4 * 1024, 7);
  for (const rate of [1, 1.5, 2, 4, 8, 10]) {
    const plan = planKvCompress(metric, shape, { rate });
    const target = Math.floor(plan.totalCount / rate);
    assert(
      plan.keptCount <= target && plan.keptCount > target - 16,
      `rate ${rate}: kept ${plan.keptCount} vs ${target}`,
    );
  }
  // Past what protection allows: every head is down to sink + window + the remainder.
  const plan = planKvCompress(metric, shape, { rate: 64 });
  for (const k of plan.kept) assertEquals(k.length, 1024 - Math.floor((1024 - 68) / 16) * 16);
});

Deno.test("planKvCompress() with maxCacheTokens keeps at most that many per head on average", () => {
  const shape = { nLayers: 2, nKvHeads: 4, nPos: 512 };
  const metric = randomMetric(2 * 4 * 512, 3);
  const plan = planKvCompress(metric, shape, { maxCacheTokens: 128 });
  assert(plan.keptCount <= 128 * 8 && plan.keptCount > 128 * 8 - 16);
  // Both targets: the smaller wins.
  assertEquals(planKvCompress(metric, shape, { maxCacheTokens: 128, rate: 2 }).keptCount, plan.keptCount);
  const byRate = planKvCompress(metric, shape, { maxCacheTokens: 500, rate: 4 });
  assert(byRate.keptCount <= 1024 && byRate.keptCount > 1024 - 16, `kept ${byRate.keptCount}`);
});

Deno.test("planKvCompress() gives heads different rates when their metrics differ", () => {
  const shape = { nLayers: 2, nKvHeads: 2, nPos: 256 };
  const rnd = lcg(11);
  // Head h's metric is scaled by 10^h: low-attention heads lose most.
  const metric = Float32Array.from({ length: 4 * 256 }, (_, i) => rnd() * 10 ** Math.floor(i / 256));
  const plan = planKvCompress(metric, shape, { rate: 2 });
  const counts = plan.kept.map((k) => k.length);
  assertEquals(plan.keptCount, 512);
  for (let h = 1; h < 4; h++) assert(counts[h - 1] <= counts[h], `counts ${counts}`);
  assert(counts[0] < counts[3], `counts ${counts}`);
  assert(plan.keptFractionPerLayer[0] < plan.keptFractionPerLayer[1]);
});

Deno.test("planKvCompress() evicts the same blocks as the reference fork's walk", () => {
  for (let seed = 1; seed <= 6; seed++) {
    const shape = { nLayers: 1 + (seed % 3), nKvHeads: 1 + (seed % 4), nPos: 100 + 37 * seed };
    const metric = randomMetric(shape.nLayers * shape.nKvHeads * shape.nPos, seed * 13);
    for (const rate of [1.3, 3, 9]) {
      const o = { blockSize: 1 + seed, protectedWindow: 3 * seed, sink: seed % 5 };
      const plan = planKvCompress(metric, shape, { ...o, rate });
      const blocks = forkWalk(metric, shape, { ...o, target: Math.floor(plan.totalCount / rate) });
      assertEquals(
        plan.kept.map((k) => (shape.nPos - k.length) / o.blockSize),
        blocks,
        `seed ${seed} rate ${rate}`,
      );
      // Within a head, the evicted KVs are exactly its lowest-metric evictable ones.
      for (let h = 0; h < plan.kept.length; h++) {
        const keptSet = new Set(plan.kept[h]);
        const row = metric.subarray(h * shape.nPos, (h + 1) * shape.nPos);
        let maxEvicted = -Infinity;
        let minKept = Infinity;
        for (let p = o.sink; p < shape.nPos - o.protectedWindow; p++) {
          if (keptSet.has(p)) minKept = Math.min(minKept, row[p]);
          else maxEvicted = Math.max(maxEvicted, row[p]);
        }
        assert(maxEvicted <= minKept, `head ${h}: evicted ${maxEvicted} above kept ${minKept}`);
      }
    }
  }
});

Deno.test("planKvCompress() breaks ties by head, then block, then older position", () => {
  const shape = { nLayers: 1, nKvHeads: 2, nPos: 32 };
  const metric = new Float32Array(64).fill(0.5);
  const o = { blockSize: 4, protectedWindow: 4, sink: 2, rate: 64 / 52 };
  const plan = planKvCompress(metric, shape, o);
  // 12 KVs to go = 3 blocks; ties favour head 0 (evictable 2..27 = 6 blocks), oldest first.
  assertEquals(Array.from(plan.kept[0]), [0, 1, ...Array.from({ length: 18 }, (_, i) => 14 + i)]);
  assertEquals(plan.kept[1].length, 32);
  assertEquals(planKvCompress(metric, shape, o), plan);
});

Deno.test("planKvCompress() keeps everything at rate 1 or with no target", () => {
  const shape = { nLayers: 2, nKvHeads: 2, nPos: 200 };
  const metric = randomMetric(800, 5);
  for (const opts of [{ rate: 1 }, {}, { maxCacheTokens: 200 }]) {
    const plan = planKvCompress(metric, shape, opts);
    assertEquals(plan.keptCount, 800);
    assertEquals(plan.keptFractionPerLayer, [1, 1]);
  }
});

Deno.test("planKvCompress() max-pooling protects the neighbours of a spike", () => {
  const shape = { nLayers: 1, nKvHeads: 1, nPos: 64 };
  const metric = Float32Array.from({ length: 64 }, (_, p) => (p === 30 ? 1 : 1e-6 * p));
  const o = { blockSize: 1, protectedWindow: 0, sink: 0, rate: 8 };
  const pooled = new Set(planKvCompress(metric, shape, { ...o, maxPool: 5 }).kept[0]);
  for (let p = 28; p <= 32; p++) assert(pooled.has(p), `position ${p} evicted`);
  const plain = new Set(planKvCompress(metric, shape, o).kept[0]);
  assert(plain.has(30) && !plain.has(28));
});

Deno.test("planKvCompress() rejects bad shapes and options", () => {
  const shape = { nLayers: 1, nKvHeads: 1, nPos: 16 };
  assertThrows(() => planKvCompress(new Float32Array(15), shape, {}), TypeError);
  assertThrows(() => planKvCompress(new Float32Array(16), { ...shape, nPos: 0 }, {}), TypeError);
  for (const bad of [{ rate: 0.5 }, { rate: NaN }, { blockSize: 0 }, { maxCacheTokens: 1.5 }, { sink: -1 }]) {
    assertThrows(() => planKvCompress(new Float32Array(16), shape, bad), RangeError);
  }
});

Deno.test("planKvCompress() never prefers a NaN metric for eviction", () => {
  const shape = { nLayers: 1, nKvHeads: 1, nPos: 16 };
  const metric = new Float32Array(16).fill(1);
  metric[3] = NaN;
  const plan = planKvCompress(metric, shape, { blockSize: 1, protectedWindow: 0, sink: 0, rate: 16 });
  assertEquals(Array.from(plan.kept[0]), [3]);
});

Deno.test("planKvCompress() plans 32 layers x 8 heads x 4096 positions to the rate asked, rates varying per head", () => {
  // Its speed at this size is a benchmark figure (tests/bench/decode_capacity.ts, "plan ms").
  const shape = { nLayers: 32, nKvHeads: 8, nPos: 4096 };
  const metric = randomMetric(32 * 8 * 4096, 9);
  const plan = planKvCompress(metric, shape, { rate: 8 });
  assertEquals(plan.kept.length, 32 * 8);
  assertEquals(plan.totalCount, 32 * 8 * 4096);
  const achieved = plan.totalCount / plan.keptCount;
  assert(achieved > 7.5 && achieved <= 8, `achieved rate ${achieved}`);
  const lengths = new Set(plan.kept.map((k) => k.length));
  assert(lengths.size > 1, "every head kept the same count: eviction was not global");
  for (const k of plan.kept) {
    for (let i = 1; i < k.length; i++) assert(k[i] > k[i - 1], "positions ascending");
  }
});
