import { assertEquals, assertThrows } from "@std/assert";
import { frameStats, STAT_NAMES } from "./frame_stats.ts";
import { noiseFrame } from "./_synthetic.ts";

Deno.test("frameStats() reports every named statistic of a frame", () => {
  const s = frameStats(noiseFrame(256, 16, 31, (_, c) => (c === 4 ? 12 : 1)), { k: 8, q: 1 });
  for (const name of STAT_NAMES) assertEquals(name in s, true, name);
  assertEquals(s.outlier_channels, [4]);
  assertEquals(s.topq_chance, 1 / 16);
});

Deno.test("frameStats() rejects a frame whose shape does not fit or that holds a non-finite value", () => {
  const f = noiseFrame(8, 4, 32);
  assertThrows(() => frameStats({ ...f, rows: 9 }), RangeError, "does not fit");
  f.data[13] = NaN;
  assertThrows(() => frameStats(f), RangeError, "token 3, channel 1");
});
