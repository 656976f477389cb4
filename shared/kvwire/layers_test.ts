import { assertEquals, assertInstanceOf, assertThrows } from "@std/assert";
import { BundleFormatError } from "./container.ts";
import {
  readEncodedLayer,
  readMetric,
  readRawLayer,
  writeEncodedLayer,
  writeMetric,
  writeRawLayer,
} from "./layers.ts";

function seq(n: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i) * scale);
}

const shape = { requestId: "r1", nLayers: 3, nKvHeads: 2, nPos: 5, headDim: 4 };

Deno.test("writeRawLayer() round-trips through readRawLayer()", () => {
  const raw = { ...shape, layer: 2, keys: seq(40), values: seq(40, 2) };
  const back = readRawLayer(writeRawLayer(raw));
  assertEquals(back, raw);
});

Deno.test("writeMetric() round-trips through readMetric()", () => {
  const m = { requestId: "r1", nLayers: 3, nKvHeads: 2, nPos: 5, metric: seq(30) };
  assertEquals(readMetric(writeMetric(m)), m);
});

Deno.test("writeEncodedLayer() keeps per-head positions, all-kept heads cost no bitmap", () => {
  const enc = {
    ...shape,
    layer: 0,
    codec: "zstd",
    frames: "head" as const,
    heads: [
      {
        positions: Int32Array.from([0, 1, 2, 3, 4]),
        keys: new Uint8Array([1, 2]),
        values: new Uint8Array([3]),
      },
      { positions: Int32Array.from([0, 4]), keys: new Uint8Array([9]), values: new Uint8Array([8, 7]) },
    ],
  };
  const bytes = writeEncodedLayer(enc);
  assertEquals(readEncodedLayer(bytes), enc);
});

Deno.test("readRawLayer() throws BundleFormatError at every truncation and never anything else", () => {
  const bytes = writeRawLayer({ ...shape, layer: 1, keys: seq(40), values: seq(40) });
  for (let cut = 0; cut < bytes.length; cut++) {
    assertThrows(() => readRawLayer(bytes.subarray(0, cut)), BundleFormatError);
  }
});

Deno.test("readEncodedLayer() rejects bit flips in the framing and header with BundleFormatError", () => {
  const enc = {
    ...shape,
    layer: 0,
    codec: "zstd",
    frames: "head" as const,
    heads: [
      { positions: Int32Array.from([0, 2]), keys: new Uint8Array([1]), values: new Uint8Array([3]) },
      { positions: Int32Array.from([1, 3, 4]), keys: new Uint8Array([9]), values: new Uint8Array([8]) },
    ],
  };
  const bytes = writeEncodedLayer(enc);
  const headerEnd = 12 + new DataView(bytes.buffer).getUint32(8, true);
  let rejected = 0;
  for (let i = 0; i < headerEnd * 8; i++) {
    const b = bytes.slice();
    b[i >> 3] ^= 1 << (i & 7);
    try {
      readEncodedLayer(b);
    } catch (e) {
      assertInstanceOf(e, BundleFormatError);
      rejected++;
    }
  }
  // Some flips land in JSON whitespace-free text that still parses to a valid header (e.g. a
  // digit of the request id); most must be caught.
  assertEquals(rejected > headerEnd * 8 * 0.8, true, `only ${rejected} of ${headerEnd * 8} flips rejected`);
});
