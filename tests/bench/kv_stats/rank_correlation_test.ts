import { assert, assertAlmostEquals, assertThrows } from "@std/assert";
import { rankCorrelation } from "./rank_correlation.ts";
import { frameOf, noiseFrame, shuffledFrame } from "./_synthetic.ts";

Deno.test("rankCorrelation() is 1 when every token has the same channel order, whatever the magnitudes", () => {
  // channel c's value rises with c at every token, scaled and shifted per token
  const f = frameOf(100, 16, (t, c) => (1 + (t % 7)) * Math.pow(c, 1.5) - t);
  const r = rankCorrelation(f, 32);
  assertAlmostEquals(r.adjacent, 1, 1e-12);
  assertAlmostEquals(r.group_first, 1, 1e-12);
  assertAlmostEquals(r.group_sum, 1, 1e-12);
});

Deno.test("rankCorrelation() is near 0 when each token's channel order is an independent shuffle", () => {
  const r = rankCorrelation(shuffledFrame(2000, 64, 7), 32);
  for (const v of [r.adjacent, r.group_first]) assert(Math.abs(v) < 0.02, `${v}`);
  // against the group's column sums a token still correlates with its own share: ~1/sqrt(k)
  assert(r.group_sum > 0.1 && r.group_sum < 0.25, `${r.group_sum}`);
});

Deno.test("rankCorrelation() is −1 between adjacent tokens whose orders alternate, and sees the lag within groups", () => {
  const f = frameOf(64, 8, (t, c) => (t % 2 ? -c : c));
  const r = rankCorrelation(f, 4);
  assertAlmostEquals(r.adjacent, -1, 1e-12);
  // lags 1, 2, 3 from each group's first token: −1, +1, −1
  assertAlmostEquals(r.group_first, -1 / 3, 1e-12);
});

Deno.test("rankCorrelation() falls between the extremes for a persistent order under noise, and rejects k < 2", () => {
  const f = noiseFrame(500, 32, 3);
  const order = frameOf(500, 32, (t, c) => c / 8 + f.data[t * 32 + c]);
  const r = rankCorrelation(order, 32);
  assert(r.adjacent > 0.3 && r.adjacent < 0.95, `${r.adjacent}`);
  assert(r.group_sum > r.group_first, "the column sums average the noise out");
  assertThrows(() => rankCorrelation(order, 1), RangeError);
});
