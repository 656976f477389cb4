import { assertEquals } from "@std/assert";
import { layerKey, layerRanges } from "./layer_range.ts";
import type { KvFrame } from "./frame.ts";

const frame = (kind: "K" | "V", layer: number, head: number, values: number[]): KvFrame => ({
  kind,
  sample: "s",
  layer,
  head,
  rows: values.length,
  cols: 1,
  data: Float32Array.from(values),
});

Deno.test("layerRanges() spans every head of a layer, and keeps K, V and layers apart", () => {
  const frames = [
    frame("K", 0, 0, [0, 1]),
    frame("K", 0, 1, [-4, 2]),
    frame("V", 0, 0, [5, 6]),
    frame("K", 1, 0, [3, 3.5]),
  ];
  const r = layerRanges(frames);
  assertEquals(r.get(layerKey(frames[0])), 6); // −4 … 2 over both heads
  assertEquals(r.get(layerKey(frames[1])), 6);
  assertEquals(r.get(layerKey(frames[2])), 1);
  assertEquals(r.get(layerKey(frames[3])), 0.5);
});
