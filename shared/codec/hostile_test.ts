import { assertEquals, assertInstanceOf, assertThrows } from "@std/assert";
import { CorruptStreamError, decode, encode, StreamLimitError } from "./mod.ts";
import type { CodecName, Tensor } from "./mod.ts";
import { kvFrame, rng } from "./testdata/gen.ts";
import { ByteWriter } from "./bytes.ts";
import { toFloat32 } from "../dtype/mod.ts";
import { PredictorFit } from "./predict/calibrate.ts";
import { buildCoefficientSet, registerCoefficientSet } from "./predict/coefficients.ts";

/** Decoding must either throw CorruptStreamError or give back exactly the original data. */
function decodeOrCorrupt(bytes: Uint8Array, original: Tensor, ctx: string): void {
  let out: Tensor;
  try {
    out = decode(bytes, { maxElements: 1 << 16 });
  } catch (err) {
    assertInstanceOf(err, CorruptStreamError, `${ctx}: ${err}`);
    return;
  }
  assertEquals(out.shape, original.shape, ctx);
  assertEquals(
    new Uint8Array(out.data.buffer),
    new Uint8Array(decode(encodeCache.get(original)!).data.buffer),
    ctx,
  );
}

const encodeCache = new Map<Tensor, Uint8Array>();
const streams: [string, Tensor, Uint8Array][] = [];
for (const codec of ["kvsort", "sz", "fast", "fp16", "fp16_zstd", "zstd", "raw", "kivi4"] as CodecName[]) {
  for (const lossless of ["none", "auto"] as const) {
    if (lossless === "auto" && codec !== "kvsort") continue;
    const t = kvFrame(12, 16, codec === "kvsort" ? "f16" : "f32", 11, true);
    const bytes = encode(t, { codec, errorBound: 1e-2, indexShare: 4, lossless });
    encodeCache.set(t, bytes);
    streams.push([`${codec}/${lossless}`, t, bytes]);
  }
}

// the linear predict stage: token-axis, and cross-channel with a registered coefficient set
{
  const fit = new PredictorFit(16);
  fit.add(toFloat32(kvFrame(40, 16, "f32", 12)), 40);
  const set = registerCoefficientSet(
    buildCoefficientSet(16, [fit.solve({ role: "key", layer: 1, head: 0 })]),
  );
  for (const predictor of ["token", "cross"] as const) {
    const t = kvFrame(12, 16, "f16", 13, true);
    const bytes = encode(t, {
      codec: "kvsort",
      errorBound: 1e-2,
      predictor,
      coefficients: set,
      role: "key",
      layer: 1,
      head: 0,
      lossless: "none",
    });
    encodeCache.set(t, bytes);
    streams.push([`kvsort/${predictor}`, t, bytes]);
  }
}

Deno.test("decode() rejects every truncation of a stream with CorruptStreamError", () => {
  for (const [name, , bytes] of streams) {
    for (let cut = 0; cut < bytes.length; cut++) {
      assertThrows(() => decode(bytes.subarray(0, cut)), CorruptStreamError, undefined, `${name} cut ${cut}`);
    }
  }
});

Deno.test("decode() survives thousands of random bit flips: typed error or the exact original", () => {
  const r = rng(7);
  for (const [name, t, bytes] of streams) {
    for (let trial = 0; trial < 800; trial++) {
      const b = bytes.slice();
      const flips = 1 + Math.floor(r() * 3);
      for (let f = 0; f < flips; f++) {
        const bit = Math.floor(r() * b.length * 8);
        b[bit >> 3] ^= 1 << (bit & 7);
      }
      decodeOrCorrupt(b, t, `${name} trial ${trial}`);
    }
  }
});

Deno.test("decode() rejects random garbage, foreign magic and trailing bytes", () => {
  const r = rng(8);
  for (let i = 0; i < 500; i++) {
    const b = Uint8Array.from({ length: Math.floor(r() * 200) }, () => Math.floor(r() * 256));
    if (i % 2 === 0 && b.length >= 5) b.set([0x4b, 0x56, 0x52, 0x5a, 1]);
    assertThrows(() => decode(b), CorruptStreamError);
  }
  const [, , good] = streams[0];
  assertThrows(() => decode(new Uint8Array([...good, 0])), CorruptStreamError, "stray");
});

Deno.test("decode() refuses absurd lengths before allocating", () => {
  const header = (dims: number[], codec = 3) => {
    const w = new ByteWriter();
    for (const b of [0x4b, 0x56, 0x52, 0x5a, 1, codec, 1, dims.length]) w.u8(b);
    for (const d of dims) w.varint(d);
    w.u32(0);
    return w;
  };
  assertThrows(() => decode(header([2 ** 40, 2 ** 40]).finish()), StreamLimitError);
  assertThrows(() => decode(header([1 << 20, 1 << 20]).finish()), StreamLimitError);
  assertThrows(() => decode(header([64, 64]).finish(), { maxElements: 100 }), StreamLimitError);
  const w = header([4, 4]);
  w.u8(0x4c), w.u8(0), w.varint(2 ** 50);
  assertThrows(() => decode(w.finish()), CorruptStreamError, "body length");
  const z = header([4, 4], 2);
  z.u8(0x4c), z.u8(1), z.varint(64), z.varint(2 ** 40);
  assertThrows(() => decode(z.finish()), CorruptStreamError);
  const deep = header([1, 1, 1, 1, 1, 1, 1, 1, 1]);
  assertThrows(() => decode(deep.finish()), CorruptStreamError, "dimensions");
});
