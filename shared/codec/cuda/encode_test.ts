/**
 * cudaFastEncodeMany's host side with a stand-in for the library (no GPU needed): a failed
 * library call settles its GPU frames one by one, so a caller can encode them on the CPU; with
 * `streamDtype: "f32"` f16 frames reach the library as f16 (frame table, page-locking) and every
 * other frame is encoded on the CPU as the f32 stream of its widened values.
 */
import { assert, assertEquals, assertNotEquals, assertRejects } from "@std/assert";
import { encode, type EncodeOptions, type Tensor } from "../mod.ts";
import { kvFrame } from "../testdata/gen.ts";
import { ByteReader } from "../bytes.ts";
import { readHeader } from "../container.ts";
import { toFloat32 } from "../../dtype/mod.ts";
import { cudaFastEncodeMany } from "./encode.ts";
import { type CudaLibrary, ED, EI, EO } from "./library.ts";
import type { HostRegistry } from "./pinned.ts";

const registry = { forCall: (views: unknown[]) => views.map(() => false) } as unknown as HostRegistry;

/** What the stand-in library was given by its last encode call. */
interface Seen {
  table?: Float64Array;
  nf?: number;
}

/**
 * A library whose encode call gives `encodeRc` (with a message), and whose collect gives
 * `collectRc`; frame f of a call gets status `status(f)` (0: a 44-byte body), and `seen` records
 * the call's frame table.
 */
function fakeLibrary(
  encodeRc: number,
  collectRc = 0,
  status = (_f: number) => 0,
  seen: Seen = {},
): CudaLibrary {
  const message = (err: Uint8Array, text: string) => err.set(new TextEncoder().encode(text + "\0"));
  const symbols = {
    kvr_fast_encode: (
      table: Float64Array,
      nf: number,
      res: Float64Array,
      chunkTable: Float64Array,
      _maxChunks: number,
      chunks: Uint32Array,
      _subBatchBytes: bigint,
      _timing: Float64Array,
      err: Uint8Array,
    ) => {
      seen.table = table.slice(), seen.nf = nf;
      if (encodeRc !== 0) {
        message(err, "cudaMalloc: out of memory");
        return Promise.resolve(encodeRc);
      }
      // every frame's body at 64, 44 bytes each, one chunk
      for (let f = 0; f < nf; f++) {
        res[f * EO.words + EO.status] = status(f);
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

/** The table column `word` of the call's `nf` frames. */
const column = (seen: Seen, word: number) =>
  Array.from({ length: seen.nf! }, (_, f) => seen.table![f * EI.words + word]);

/** The tensor's exact fp32 values (what f32 streams are of). */
const widened = (t: Tensor): Tensor => ({ dtype: "f32", shape: t.shape, data: toFloat32(t) });

const dtypeOf = (s: Uint8Array) => readHeader(new ByteReader(s), 2 ** 30).dtype;

const fulfilled = (r: PromiseSettledResult<Uint8Array>) => {
  assert(r.status === "fulfilled", JSON.stringify(r));
  return r.value;
};

Deno.test('cudaFastEncodeMany() with streamDtype "f32" gives the library f16 frames as f16, the CPU bf16 as f32 streams', async () => {
  const mixed: Tensor[] = [
    kvFrame(64, 16, "f32", 1),
    kvFrame(48, 8, "f16", 2, true),
    kvFrame(33, 8, "bf16", 3, true),
    kvFrame(40, 4, "f16", 4),
  ];
  const seen: Seen = {};
  const views: ArrayBufferView[] = [];
  const recording = {
    forCall: (v: ArrayBufferView[]) => (views.push(...v), v.map(() => false)),
  } as unknown as HostRegistry;
  const got = await cudaFastEncodeMany(fakeLibrary(0, 0, () => 0, seen), recording, mixed, fast, {
    streamDtype: "f32",
  });
  assertEquals(got.frames, [
    { backend: "cuda" },
    { backend: "cuda" },
    { backend: "cpu", fallback: "bf16 input" },
    { backend: "cuda" },
  ]);
  assertEquals(seen.nf, 3);
  assertEquals(column(seen, EI.dtype), [ED.f32, ED.f16, ED.f16]);
  assertEquals(column(seen, EI.rows), [64, 48, 40]);
  assertEquals(
    column(seen, EI.ptr)[1],
    Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(mixed[1].data))),
  );
  assert(views.includes(mixed[1].data) && views.includes(mixed[3].data), "the f16 frames' data page-locked");
  // every stream says f32: the GPU frames' prefixes, and the bf16 frame's CPU stream of its widened values
  for (const r of got.results) assertEquals(dtypeOf(fulfilled(r)), "f32");
  const bf16 = fulfilled(got.results[2]);
  assertEquals(bf16, encode(widened(mixed[2]), fast));
  assertNotEquals(bf16, encode(mixed[2], fast));
});

Deno.test("cudaFastEncodeMany() leaves f16 frames to the CPU, as f16 streams, unless asked for f32 streams", async () => {
  const seen: Seen = {};
  for (const run of [{}, { streamDtype: "input" as const }]) {
    const got = await cudaFastEncodeMany(fakeLibrary(0, 0, () => 0, seen), registry, frames, fast, run);
    assertEquals(got.frames.map((f) => f.fallback), [undefined, "f16 input", undefined]);
    assertEquals(column(seen, EI.dtype), [ED.f32, ED.f32]);
    const f16 = fulfilled(got.results[1]);
    assertEquals(f16, encode(frames[1], fast));
    assertEquals(dtypeOf(f16), "f16");
  }
});

Deno.test('cudaFastEncodeMany() with streamDtype "f32" encodes what the GPU gives back, and other codecs, widened on the CPU', async () => {
  const f16 = kvFrame(64, 16, "f16", 5, true);
  const kivi: EncodeOptions = { codec: "kivi8" };
  // the library leaves the call's first frame (the f16 one) to the CPU: values over 2^15 bounds
  const got = await cudaFastEncodeMany(fakeLibrary(0, 0, (f) => f === 0 ? 3 : 0), registry, [f16, f16], [
    fast,
    kivi,
  ], { streamDtype: "f32" });
  assertEquals(got.frames.map((f) => f.fallback), [
    "values over 2^15 bounds from 0 (every value checked)",
    "codec kivi8",
  ]);
  assertEquals(fulfilled(got.results[0]), encode(widened(f16), fast));
  assertEquals(fulfilled(got.results[1]), encode(widened(f16), kivi));
  assertEquals(dtypeOf(fulfilled(got.results[0])), "f32");
});

Deno.test("cudaFastEncodeMany() refuses a streamDtype other than input or f32", async () => {
  for (const streamDtype of ["f16", "bf16", ""]) {
    await assertRejects(
      () => cudaFastEncodeMany(fakeLibrary(0), registry, frames, fast, { streamDtype } as never),
      RangeError,
      "streamDtype is input or f32",
    );
  }
});
