/**
 * cudaFastEncodeMany's handling of a failed library call, with a stand-in for the library (no
 * GPU needed): the GPU frames settle one by one, so a caller can encode them on the CPU.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { encode, type EncodeOptions, type Tensor } from "../mod.ts";
import { kvFrame } from "../testdata/gen.ts";
import { cudaFastEncodeMany } from "./encode.ts";
import { type CudaLibrary, EO } from "./library.ts";
import type { HostRegistry } from "./pinned.ts";

const registry = { forCall: (views: unknown[]) => views.map(() => false) } as unknown as HostRegistry;

/** A library whose encode call gives `encodeRc` (with a message), and whose collect gives `collectRc`. */
function fakeLibrary(encodeRc: number, collectRc = 0): CudaLibrary {
  const message = (err: Uint8Array, text: string) => err.set(new TextEncoder().encode(text + "\0"));
  const symbols = {
    kvr_fast_encode: (
      _table: Float64Array,
      nf: number,
      res: Float64Array,
      chunkTable: Float64Array,
      _maxChunks: number,
      chunks: Uint32Array,
      _subBatchBytes: bigint,
      _timing: Float64Array,
      err: Uint8Array,
    ) => {
      if (encodeRc !== 0) {
        message(err, "cudaMalloc: out of memory");
        return Promise.resolve(encodeRc);
      }
      // every frame's body at 64, 44 bytes each, one chunk
      for (let f = 0; f < nf; f++) {
        res[f * EO.words + EO.status] = 0;
        res[f * EO.words + EO.bodyAt] = 64 + 128 * f;
        res[f * EO.words + EO.bodyLen] = 44;
      }
      chunks[0] = 1;
      chunkTable[0] = 0;
      chunkTable[1] = 128 * nf;
      return Promise.resolve(0);
    },
    kvr_fast_encode_collect: (...args: unknown[]) => {
      if (collectRc !== 0) {
        message(args[5] as Uint8Array, "collect: the destination is not the last encode's size");
      }
      return Promise.resolve(collectRc);
    },
  };
  return { symbols, device: "fake", deviceIndex: 0, path: "fake" } as unknown as CudaLibrary;
}

const fast: EncodeOptions = { codec: "fast", errorBound: 1e-2, mode: "rel" };
const frames: Tensor[] = [kvFrame(64, 16, "f32", 1), kvFrame(64, 16, "f16", 2), kvFrame(33, 8, "f32", 3)];

Deno.test("cudaFastEncodeMany() settles the GPU frames of a failed call one by one, the CPU frames as the CPU gives them", async () => {
  const got = await cudaFastEncodeMany(fakeLibrary(-1), registry, frames, fast);
  assertEquals(got.frames.map((f) => f.backend), ["cuda", "cpu", "cuda"]);
  for (const i of [0, 2]) {
    const r = got.results[i];
    assert(
      r.status === "rejected" && /out of memory/.test(String(r.reason)),
      `frame ${i}: ${JSON.stringify(r)}`,
    );
  }
  const r1 = got.results[1];
  assert(r1.status === "fulfilled");
  assertEquals(r1.value, encode(frames[1], fast));
});

Deno.test("cudaFastEncodeMany() settles the GPU frames of a failed collect one by one", async () => {
  const got = await cudaFastEncodeMany(fakeLibrary(0, -1), registry, frames, fast);
  for (const i of [0, 2]) {
    const r = got.results[i];
    assert(r.status === "rejected" && /collect/.test(String(r.reason)), `frame ${i}: ${JSON.stringify(r)}`);
  }
  assert(got.results[1].status === "fulfilled");
});

Deno.test("cudaFastEncodeMany() refuses a sub-batch size that is not a positive integer, as decode does", async () => {
  for (const subBatchBytes of [-1, 0, 1.5, Number.NaN]) {
    await assertRejects(
      () => cudaFastEncodeMany(fakeLibrary(0), registry, frames, fast, { subBatchBytes }),
      RangeError,
      "subBatchBytes must be a positive integer",
    );
  }
});
