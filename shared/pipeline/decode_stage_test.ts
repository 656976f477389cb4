/**
 * A layer bundle whose frame claims other than its positions say is refused as corrupt_bundle
 * before any frame is decoded, so a stream cannot make a decoder allocate for a whole context.
 */
import { assertEquals, assertRejects, assertThrows } from "@std/assert";
import { encode } from "../codec/mod.ts";
import { allPositions, writeEncodedLayer } from "../kvwire/mod.ts";
import { KvrelayError } from "../errors.ts";
import { bundleExpectation, decodeLayerBundle, decodeLayerBundleWith } from "./decode_stage.ts";

const HD = 8, N_POS = 16;
const expect = bundleExpectation({ nLayers: 2, nKvHeads: 2, headDim: HD, maxSeqLen: 4096 });
const frame = (rows: number) =>
  encode(
    { dtype: "f32", shape: [rows, HD], data: Float32Array.from({ length: rows * HD }, (_, i) => i % 7) },
    {
      codec: "fp16",
    },
  );

/** Layer 0 of 2, two heads: head 1 keeps positions 0..9, and its K frame has `kRows` rows. */
function bundle(kRows: number): Uint8Array {
  const kept = allPositions(10);
  return writeEncodedLayer({
    requestId: "r",
    layer: 0,
    nLayers: 2,
    nKvHeads: 2,
    nPos: N_POS,
    headDim: HD,
    codec: "fp16",
    frames: "head",
    heads: [
      { positions: allPositions(N_POS), keys: frame(N_POS), values: frame(N_POS) },
      { positions: kept, keys: frame(kRows), values: frame(10) },
    ],
  });
}

Deno.test("a layer whose frames match its positions decodes", () => {
  const l = decodeLayerBundle(bundle(10), expect);
  assertEquals(l.heads.map((h) => h.keys.length), [N_POS * HD, 10 * HD]);
});

Deno.test("a frame claiming more values than its positions is refused before any decoding", async () => {
  for (const rows of [11, 4000]) {
    const err = assertThrows(() => decodeLayerBundle(bundle(rows), expect), KvrelayError);
    assertEquals(err.code, "corrupt_bundle");
    assertEquals(err.message, `K frame 1 claims [${rows},${HD}] values, its positions say [10,${HD}]`);
    let called = false;
    const e2 = await assertRejects(
      () => decodeLayerBundleWith(bundle(rows), expect, () => (called = true, Promise.resolve([]))),
      KvrelayError,
    );
    assertEquals([e2.code, called], ["corrupt_bundle", false]);
  }
});
