import { assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { outlierChannels } from "./outlier_channels.ts";
import { noiseFrame } from "./_synthetic.ts";

Deno.test("outlierChannels() detects a planted persistent channel and the energy it holds", () => {
  const f = noiseFrame(1000, 64, 21, (_, c) => (c === 17 ? 8 : 1));
  const o = outlierChannels(f);
  assertEquals(o.channels, [17]);
  assertEquals(o.persistence, 1);
  // 64 / (63 + 64) of the energy in expectation
  assertAlmostEquals(o.energy_share, 64 / 127, 0.05);
});

Deno.test("outlierChannels() finds none in plain noise, and persistence is null then", () => {
  const o = outlierChannels(noiseFrame(1000, 64, 22));
  assertEquals(o.count, 0);
  assertEquals(o.persistence, null);
  assertEquals(o.energy_share, 0);
});

Deno.test("outlierChannels() gives persistence 0 to a channel that stands out in one half only", () => {
  const f = noiseFrame(1000, 64, 23, (t, c) => (c === 2 && t < 500) || (c === 9 && t >= 500) ? 30 : 1);
  const o = outlierChannels(f);
  assertEquals(o.channels, [2, 9]);
  assertEquals(o.persistence, 0);
  assertThrows(() => outlierChannels(f, 1), RangeError);
});

Deno.test("outlierChannels() counts a rotary pair that moves its energy between halves as persistent by pair only", () => {
  // channel 5 stands out in the first half, its rotate-half partner 5 + 32 in the second
  const f = noiseFrame(1000, 64, 24, (t, c) => (c === 5 && t < 500) || (c === 37 && t >= 500) ? 30 : 1);
  const o = outlierChannels(f);
  assertEquals(o.channels, [5, 37]);
  assertEquals(o.persistence, 0);
  assertEquals(o.pair_persistence, 1);
  assertEquals(outlierChannels(noiseFrame(1000, 64, 22)).pair_persistence, null);
});
