import { assertEquals } from "@std/assert";
import { maxPool1d } from "./max_pool.ts";
import { lcg } from "./_testing.ts";

Deno.test("maxPool1d() equals a windowed max for odd and even kernels", () => {
  const rnd = lcg(3);
  const row = Float32Array.from({ length: 50 }, () => rnd());
  for (const k of [0, 1, 2, 3, 4, 7, 60]) {
    const left = k >> 1;
    const expected = Float32Array.from(row, (_, p) => {
      if (k <= 1) return row[p];
      let m = -Infinity;
      for (let q = Math.max(0, p - left); q <= Math.min(49, p - left + k - 1); q++) m = Math.max(m, row[q]);
      return m;
    });
    assertEquals(maxPool1d(row, k), expected, `k ${k}`);
  }
});
