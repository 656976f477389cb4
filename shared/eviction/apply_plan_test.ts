import { assertEquals, assertThrows } from "@std/assert";
import { applyPlan, gatherRows } from "./apply_plan.ts";
import { planKvCompress } from "./plan_kv_compress.ts";
import { randomMetric } from "./_testing.ts";

Deno.test("applyPlan() gathers each head's kept rows with their true positions", () => {
  const shape = { nLayers: 2, nKvHeads: 3, nPos: 100 };
  const hd = 4;
  const plan = planKvCompress(randomMetric(600, 1), shape, { rate: 3, blockSize: 4, protectedWindow: 8 });
  // Each element encodes (head, position, dim) so a wrong row shows.
  const keys = Float32Array.from({ length: 3 * 100 * hd }, (_, i) => i);
  const values = keys.map((x) => -x);
  const s = applyPlan({ keys, values }, plan, 1, hd);
  for (let h = 0; h < 3; h++) {
    const pos = plan.kept[3 + h];
    assertEquals(s.positions[h], pos);
    assertEquals(s.keys[h].length, pos.length * hd);
    for (let i = 0; i < pos.length; i++) {
      for (let d = 0; d < hd; d++) {
        assertEquals(s.keys[h][i * hd + d], (h * 100 + pos[i]) * hd + d);
        assertEquals(s.values[h][i * hd + d], -((h * 100 + pos[i]) * hd + d));
      }
    }
  }
});

Deno.test("applyPlan() rejects a cache of the wrong size or a layer out of range", () => {
  const shape = { nLayers: 1, nKvHeads: 1, nPos: 8 };
  const plan = planKvCompress(new Float32Array(8), shape, {});
  const kv = { keys: new Float32Array(16), values: new Float32Array(16) };
  assertThrows(() => applyPlan(kv, plan, 0, 3), TypeError);
  assertThrows(() => applyPlan(kv, plan, 1, 2), RangeError);
});

Deno.test("gatherRows() copies exactly the rows named, runs and single rows alike", () => {
  const width = 3, rows = 20;
  const src = Float32Array.from({ length: 2 * rows * width }, (_, i) => i + 0.5);
  const base = rows * width; // the second of two heads
  const positions = Int32Array.from([0, 1, 2, 5, 7, 8, 12, 17, 18, 19]);
  const dst = new Float32Array(positions.length * width).fill(-1);
  gatherRows(src, base, positions, width, dst);
  const want = Array.from(positions).flatMap((p) =>
    Array.from(src.subarray(base + p * width, base + (p + 1) * width))
  );
  assertEquals(Array.from(dst), want);
});
