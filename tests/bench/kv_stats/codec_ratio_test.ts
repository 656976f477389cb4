import { assert, assertEquals, assertThrows } from "@std/assert";
import { type CodecCase, codecCases, codecRatio } from "./codec_ratio.ts";
import type { KvFrame } from "./frame.ts";
import { noiseFrame } from "./_synthetic.ts";

/** Two heads of one layer, the second ten times the range of the first. */
function layer(): KvFrame[] {
  return [1, 10].map((scale, head) => ({
    ...noiseFrame(128, 16, 40 + head, () => scale),
    kind: "K" as const,
    sample: "s",
    layer: 0,
    head,
  }));
}

Deno.test("codecRatio() keeps every bounded codec within rel × the layer's range and reports the fp16 basis", () => {
  const frames = layer();
  const cases = codecCases(32);
  assertEquals(cases.map((c) => c.name), [
    "kvsort",
    "kvsort-k32",
    "sz",
    "fast",
    "fp16",
    "fp16_zstd",
    "zstd-3",
  ]);
  for (const c of cases) {
    const row = codecRatio("K", frames, c, c.bounded ? 1e-2 : null);
    assertEquals(row.values, 2 * 128 * 16);
    assertEquals(row.ratio_fp16, (2 * row.values) / row.bytes);
    if (c.bounded) {
      assert(row.bound_ok && row.max_err_over_bound! <= 1 && row.max_err_over_bound! > 0.3, c.name);
    } else assertEquals(row.bound_ok, null);
  }
  const fp16 = codecRatio("K", frames, cases.find((c) => c.name === "fp16")!, null);
  assert(fp16.ratio_fp16 > 0.9 && fp16.ratio_fp16 < 1, `${fp16.ratio_fp16}: fp16 plus its container`);
});

Deno.test("codecRatio() bounds the small head by the layer's range, not its own", () => {
  const frames = layer();
  let range = -Infinity, lo = Infinity;
  for (const f of frames) for (const v of f.data) (range = Math.max(range, v)), (lo = Math.min(lo, v));
  const seen: number[] = [];
  const spy: CodecCase = {
    name: "spy",
    bounded: true,
    options: (_, abs) => (seen.push(abs), { codec: "sz", errorBound: abs, mode: "abs" }),
  };
  codecRatio("K", frames, spy, 1e-2);
  assertEquals(seen, [1e-2 * (range - lo), 1e-2 * (range - lo)]);
});

Deno.test("codecRatio() refuses a bound for a baseline and none for a bounded codec", () => {
  const [kvsort, , , , fp16] = codecCases(8);
  assertThrows(() => codecRatio("K", layer(), fp16, 1e-2), RangeError);
  assertThrows(() => codecRatio("K", layer(), kvsort, null), RangeError);
});
