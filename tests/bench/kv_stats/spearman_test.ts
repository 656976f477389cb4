import { assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { ranks, spearman } from "./spearman.ts";

Deno.test("ranks() gives tied values the mean of the ranks they span", () => {
  assertEquals([...ranks([10, 30, 20, 30])], [0, 2.5, 1, 2.5]);
});

Deno.test("spearman() is 1 for any increasing map, −1 for a decreasing one, NaN for a constant vector", () => {
  const x = [0.3, -2, 5, 1, 4.5];
  assertAlmostEquals(spearman(x, x.map((v) => Math.exp(v))), 1, 1e-12);
  assertAlmostEquals(spearman(x, x.map((v) => -v * v * v)), -1, 1e-12);
  assertEquals(spearman(x, [1, 1, 1, 1, 1]), NaN);
});

Deno.test("spearman() matches the textbook 1 − 6Σd²/(n(n²−1)) without ties, and rejects unequal lengths", () => {
  const x = [1, 2, 3, 4, 5], y = [2, 1, 4, 3, 5]; // d² = 1+1+1+1+0
  assertAlmostEquals(spearman(x, y), 1 - (6 * 4) / (5 * 24), 1e-12);
  assertThrows(() => spearman([1, 2], [1, 2, 3]), RangeError);
});
