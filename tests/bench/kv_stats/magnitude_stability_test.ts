import { assert, assertAlmostEquals, assertEquals } from "@std/assert";
import { defaultQ, magnitudeStability } from "./magnitude_stability.ts";
import { frameOf, gaussian, noiseFrame } from "./_synthetic.ts";

Deno.test("magnitudeStability() finds planted large channels at every token and in both halves", () => {
  // channels 5 and 40 of 64 sit near 10 all along the context, the rest are noise of rising scale
  const g = gaussian(11);
  const f = frameOf(1000, 64, (_, c) => (c === 5 || c === 40 ? 10 + g() : g() * (1 + c / 64)));
  const m = magnitudeStability(f, 2);
  assert(m.topq_overlap > 0.9, `${m.topq_overlap}`);
  assert(m.halves_corr > 0.8, `${m.halves_corr}`);
  assertEquals(m.topq_chance, 2 / 64);
});

Deno.test("magnitudeStability() is at chance when magnitudes are exchangeable across channels", () => {
  const m = magnitudeStability(noiseFrame(2000, 64, 12));
  assertEquals(defaultQ(64), 8);
  assertAlmostEquals(m.topq_overlap, m.topq_chance, 0.03);
  assert(Math.abs(m.halves_corr) < 0.5, `${m.halves_corr}`);
});

Deno.test("magnitudeStability() sees large channels that move between the halves", () => {
  // channel 3 is large in the first half, channel 60 in the second
  const f = noiseFrame(1000, 64, 13, (t, c) => (c === 3 && t < 500) || (c === 60 && t >= 500) ? 20 : 1);
  const m = magnitudeStability(f, 1);
  assert(m.topq_overlap > 0.4 && m.topq_overlap < 0.6, `${m.topq_overlap}`);
});
