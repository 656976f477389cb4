/**
 * The fast codec on CUDA against the CPU codec, on the GPU host (infra/gpu/bench_all.sh runs it
 * after building the library): CUDA streams are the CPU encoder's bytes, CUDA decoding gives
 * the CPU decoder's values bit for bit and its errors, both directions, on several shapes and
 * options, with outliers and non-finite values; the bound holds element by element. fp16 input
 * widened on the device (`streamDtype: "f32"`) gives the CPU encoder's streams of the widened
 * values, alone and mixed with f32 frames. Without the library or a device every test is
 * skipped, saying why.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { CorruptStreamError, decode, encode, type EncodeOptions, type Tensor } from "../mod.ts";
import { kvFrame, rng } from "../testdata/gen.ts";
import { assertBound, assertSameBits } from "../_testing.ts";
import { fromFloat32, toFloat32 } from "../../dtype/mod.ts";
import { crc32 } from "node:zlib";
import { ByteReader } from "../bytes.ts";
import { readHeader } from "../container.ts";
import { loadLossless } from "../lossless/zstd.ts";
import { createCudaFastCodec, type CudaFastCodec } from "./codec.ts";
import { CudaUnavailableError } from "./library.ts";

/** Why there is no CUDA (undefined when there is). */
let codec: CudaFastCodec | undefined;
const noCuda: string | undefined = (() => {
  try {
    codec = createCudaFastCodec({ libPath: Deno.env.get("KVRELAY_CUDA_LIB") || undefined });
    return undefined;
  } catch (err) {
    if (err instanceof CudaUnavailableError) return err.message;
    throw err;
  }
})();

function cudaTest(name: string, fn: (c: CudaFastCodec) => Promise<void>): void {
  Deno.test({
    name: noCuda ? `${name} (skipped: ${noCuda})` : name,
    ignore: noCuda !== undefined,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: () => fn(codec!),
  });
}

const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

/** A frame with the fast path's exceptions: NaN, ±Inf, and -0 and a subnormal among finite values. */
function withNonFinite(rows: number, cols: number, seed: number): Tensor {
  const t = kvFrame(rows, cols, "f32", seed);
  const v = t.data as Float32Array;
  const specials = [NaN, Infinity, -Infinity, -0, 1e-40];
  for (let k = 0; k < Math.max(5, v.length >> 6); k++) v[(k * 7919 + seed) % v.length] = specials[k % 5];
  return t;
}

/** A frame whose blocks each have one spike (outliers stored apart). */
function withSpikes(rows: number, cols: number, seed: number): Tensor {
  const t = kvFrame(rows, cols, "f32", seed);
  const v = t.data as Float32Array;
  // ±6 keeps every value within 2^15 bounds of 0 at 1e-3 abs: the GPU path takes the frame
  for (let b = 0; b < v.length; b += 97) v[b] += (b % 2 ? 1 : -1) * 6;
  return t;
}

const SHAPES: [number, number][] = [[1, 1], [31, 3], [33, 7], [100, 128], [1024, 128], [8192, 128]];
const OPTIONS: EncodeOptions[] = [
  { codec: "fast", errorBound: 1e-2, mode: "rel" },
  { codec: "fast", errorBound: 1e-3, mode: "abs", fastPredictor: "delta" },
  { codec: "fast", errorBound: 5e-2, mode: "rel", fastPredictor: "none" },
  { codec: "fast", errorBound: 1e-4, mode: "rel", fastPredictor: "auto" },
];

/** Encodes on CUDA, asserts byte identity with the CPU, CUDA-decodes both ways and checks bits and bound. */
async function assertRoundTrips(c: CudaFastCodec, frames: Tensor[], opts: EncodeOptions, ctx: string) {
  const got = await c.encodeManyWithInfo(frames, opts, { subBatchBytes: 1 << 20 }); // many sub-batches
  const cpuStreams = frames.map((t) => encode(t, opts));
  got.results.forEach((r, i) => {
    assert(r.status === "fulfilled", `${ctx} frame ${i}: ${(r as PromiseRejectedResult).reason}`);
    assert(
      same(r.value, cpuStreams[i]),
      `${ctx} frame ${i} [${frames[i].shape}]: stream differs from the CPU's`,
    );
  });
  const gpuStreams = got.results.map((r) => (r as PromiseFulfilledResult<Uint8Array>).value);
  // many pipelined sub-batches (64 KiB of values each) here, one for the CUDA streams below
  const fromCpu = await c.decodeManyWithInfo(cpuStreams, undefined, { subBatchBytes: 1 << 16 });
  const fromGpu = await c.decodeMany(gpuStreams);
  frames.forEach((t, i) => {
    const ref = decode(cpuStreams[i]);
    const r = fromCpu.results[i];
    assert(r.status === "fulfilled", `${ctx} frame ${i}: CUDA decode of the CPU stream failed`);
    assertSameBits(r.value, ref, `${ctx} frame ${i}: CUDA decode of the CPU stream`);
    assertSameBits(fromGpu[i], ref, `${ctx} frame ${i}: CUDA decode of the CUDA stream`);
    assertSameBits(decode(gpuStreams[i]), ref, `${ctx} frame ${i}: CPU decode of the CUDA stream`);
    assertBound(t, fromGpu[i], boundOf(t, opts), `${ctx} frame ${i}`, { signedZero: false });
  });
  return { encode: got, decode: fromCpu };
}

/** The absolute bound `opts` asks of `t` (rel: times the finite range). */
function boundOf(t: Tensor, o: EncodeOptions): number {
  const b = (o as { errorBound: number }).errorBound;
  if ((o as { mode?: string }).mode !== "rel") return b;
  let lo = Infinity, hi = -Infinity;
  for (const v of t.data as Float32Array) if (Number.isFinite(v)) lo = Math.min(lo, v), hi = Math.max(hi, v);
  return b * (hi - lo);
}

cudaTest(
  "createCudaFastCodec() encodes byte for byte as the CPU and decodes bit for bit, every shape and option",
  async (c) => {
    for (const [k, o] of OPTIONS.entries()) {
      const frames = SHAPES.map(([r, cols], s) => kvFrame(r, cols, "f32", 11 + 7 * k + s));
      const { encode: e } = await assertRoundTrips(c, frames, o, `options ${k}`);
      // frames of one row and one column have a zero range under rel: the CPU takes those
      const onGpu = e.frames.filter((f) => f.backend === "cuda").length;
      assert(
        onGpu >= SHAPES.length - 1,
        `options ${k}: only ${onGpu} frames on CUDA (${JSON.stringify(e.frames)})`,
      );
    }
  },
);

cudaTest(
  "createCudaFastCodec() stores NaN, ±Inf as exceptions and spikes as outliers, as the CPU does",
  async (c) => {
    const frames = [
      withNonFinite(1000, 128, 3),
      withNonFinite(33, 5, 4),
      withSpikes(4096, 128, 5),
      withSpikes(77, 9, 6),
    ];
    for (const o of OPTIONS) {
      const { encode: e } = await assertRoundTrips(c, frames, o, `specials ${JSON.stringify(o)}`);
      assert(e.frames.every((f) => f.backend === "cuda"), JSON.stringify(e.frames));
    }
    // the specials are really there: exceptions and outliers in the headers
    const body = (s: Uint8Array) => new DataView(s.buffer, s.byteOffset + s.length - bodyLength(s));
    const e0 = encode(frames[0], OPTIONS[0]), e2 = encode(frames[2], OPTIONS[0]);
    assert(body(e0).getUint32(36, true) > 0, "frame 0 has exceptions");
    assert(body(e2).getUint32(28, true) > 0, "frame 2 has outliers");
  },
);

cudaTest(
  "createCudaFastCodec() leaves to the CPU what the GPU path does not take, with the CPU's bytes and errors",
  async (c) => {
    const f16 = kvFrame(64, 16, "f16", 9);
    const huge = fromFloat32(Float32Array.from({ length: 256 }, (_, i) => i === 3 ? 3e38 : Math.sin(i)), [
      16,
      16,
    ], "f32");
    const zeros: Tensor = { dtype: "f32", shape: [64, 8], data: new Float32Array(512) };
    const frames = [f16, huge, zeros, kvFrame(64, 16, "f32", 10)];
    const o: EncodeOptions = { codec: "fast", errorBound: 1e-2, mode: "rel" };
    // 3e38 against an absolute bound: every value checked (quantStep's slow branch)
    const os: EncodeOptions[] = [o, { codec: "fast", errorBound: 1e-2, mode: "abs" }, o, o];
    const got = await c.encodeManyWithInfo(frames, os);
    assertEquals(got.frames.map((f) => f.backend), ["cpu", "cpu", "cpu", "cuda"]);
    got.results.forEach((r, i) => {
      assert(r.status === "fulfilled" && same(r.value, encode(frames[i], os[i])), `frame ${i}`);
    });
    const bad = await c.encodeManySettled(frames, [o, os[1], o, {
      codec: "fast",
      errorBound: -1,
      mode: "abs",
    }]);
    assert(bad[3].status === "rejected" && bad[3].reason instanceof RangeError);
    assert(bad[0].status === "fulfilled");
  },
);

/** Bytes of a stream's body (the container's lossless section, mode none). */
function bodyLength(s: Uint8Array): number {
  const r = new ByteReader(s);
  readHeader(r, 2 ** 30);
  return loadLossless(r, 2 ** 31).length;
}

/** A copy of `stream` with its body changed by `edit` and the digest made right again. */
function reseal(stream: Uint8Array, edit: (body: Uint8Array, dv: DataView) => void): Uint8Array {
  const out = stream.slice();
  const r = new ByteReader(out);
  readHeader(r, 2 ** 30);
  const digestAt = r.pos - 4;
  const body = loadLossless(r, 2 ** 31);
  edit(body, new DataView(body.buffer, body.byteOffset, body.byteLength));
  new DataView(out.buffer).setUint32(digestAt, crc32(body) >>> 0, true);
  return out;
}

/**
 * Streams that must fail decoding, each made from the good stream `s`: a digest that no longer
 * matches (the library's crc32), a width past 31 and an outlier flag the header does not count
 * (the kernels), payload words off and a truncation (the host's checks).
 */
function hostileStreams(s: Uint8Array): Uint8Array[] {
  const badDigest = s.slice();
  badDigest[badDigest.length - 8] ^= 0xff;
  return [
    badDigest,
    reseal(s, (b) => {
      b[44 + 3] = 0x3f;
    }),
    reseal(s, (b) => {
      b[44 + 5] ^= 0x40;
    }),
    reseal(s, (_b, dv) => dv.setUint32(40, dv.getUint32(40, true) + 1, true)),
    s.subarray(0, s.length - 5),
  ];
}

cudaTest(
  "createCudaFastCodec() rejects hostile streams with the CPU decoder's CorruptStreamError",
  async (c) => {
    const t = withSpikes(256, 32, 12);
    const s = encode(t, { codec: "fast", errorBound: 1e-2, mode: "rel" });
    const hostile = hostileStreams(s);
    hostile.splice(4, 0, reseal(s, (_b, dv) => dv.setFloat64(20, -1, true))); // a negative step
    for (const [k, h] of hostile.entries()) {
      await assertRejects(() => c.decodeMany([h]), CorruptStreamError, undefined, `hostile stream ${k}`);
      const settled = await c.decodeManyWithInfo([s, h, s]);
      assert(
        settled.results[0].status === "fulfilled" && settled.results[2].status === "fulfilled",
        `stream ${k}: the intact ones decode`,
      );
      assert(settled.results[1].status === "rejected", `stream ${k}`);
    }
    const ok = await c.decodeMany([s]);
    assertSameBits(ok[0], decode(s), "the intact stream");
  },
);

/** `n`-value views one after another in `pool` from value `at` (the layout a block-store pool gives). */
function viewsOf(pool: Float32Array, ns: number[], at = 0): Float32Array[] {
  return ns.map((n) => {
    const v = pool.subarray(at, at + n);
    at += n;
    return v;
  });
}

const SENTINEL = 0x7fc0dead; // a NaN no decoder writes

function fillSentinel(out: Float32Array): void {
  new Uint32Array(out.buffer, out.byteOffset, out.length).fill(SENTINEL);
}

function untouched(out: Float32Array): boolean {
  return new Uint32Array(out.buffer, out.byteOffset, out.length).every((b) => b === SENTINEL);
}

cudaTest(
  "decodeManyInto() writes the CPU decoder's bits into reused outputs, across calls of other shapes",
  async (c) => {
    // 32 MiB: page-locked once, so the values come by DMA; later calls reuse the registration
    const pool = new Float32Array(8 * 2 ** 20);
    const o: EncodeOptions = { codec: "fast", errorBound: 1e-3, mode: "rel" };
    const calls: [number, number][][] = [
      [[8192, 128], [31, 3], [1024, 128], [100, 128]],
      [[33, 7], [4096, 128], [1, 1], [2048, 128], [8192, 128]],
      [[1000, 128], [4096, 128]],
    ];
    for (const [k, shapes] of calls.entries()) {
      const frames = shapes.map(([r, cols], s) => withNonFinite(r, cols, 40 + 10 * k + s));
      const streams = await c.encodeMany(frames, o);
      fillSentinel(pool);
      // after a gap of 5 values: outputs need not start at the pool's head
      const outs = viewsOf(pool, frames.map((t) => t.data.length), 5);
      // calls 1 and 2 in pipelined sub-batches of about 256 KiB (exceptions split among them)
      const got = await c.decodeManyIntoWithInfo(streams, outs, undefined, {
        subBatchBytes: k ? 1 << 18 : undefined,
      });
      if (k) assert(got.timing.subBatches > 1, `call ${k}: ${got.timing.subBatches} sub-batches`);
      const onGpu = got.frames.filter((f) => f.backend === "cuda").length;
      assert(onGpu >= shapes.length - 1, `call ${k}: ${JSON.stringify(got.frames)}`);
      const gpuValues = frames.reduce(
        (a, t, i) => a + (got.frames[i].backend === "cuda" ? t.data.length : 0),
        0,
      );
      assertEquals(got.timing.directBytes, 4 * gpuValues, `call ${k}: every GPU frame's values by DMA`);
      streams.forEach((s, i) => {
        const r = got.results[i];
        assert(r.status === "fulfilled", `call ${k} stream ${i}: ${(r as PromiseRejectedResult).reason}`);
        assertEquals(r.value.shape, frames[i].shape);
        assert(r.value.data.buffer === pool.buffer && r.value.data.byteOffset === outs[i].byteOffset);
        assertSameBits(r.value, decode(s), `call ${k} stream ${i}`);
      });
      // nothing written past the last output
      const end = 5 + frames.reduce((a, t) => a + t.data.length, 0);
      assert(untouched(pool.subarray(0, 5)) && untouched(pool.subarray(end)), `call ${k}: stray writes`);
    }
  },
);

cudaTest(
  "decodeManyInto() into small separate outputs (through pinned staging) and with CPU fallbacks",
  async (c) => {
    const o: EncodeOptions = { codec: "fast", errorBound: 1e-2, mode: "rel" };
    const zeros: Tensor = { dtype: "f32", shape: [64, 8], data: new Float32Array(512) };
    const frames = [kvFrame(100, 128, "f32", 21), zeros, withSpikes(77, 9, 22), kvFrame(31, 3, "f32", 23)];
    const streams = frames.map((t) => encode(t, o));
    // outputs under the registry's minimum stay pageable; one longer than needed
    const outs = frames.map((t, i) => new Float32Array(t.data.length + (i === 3 ? 17 : 0)));
    outs.forEach(fillSentinel);
    const info = await c.decodeManyIntoWithInfo(streams, outs);
    assertEquals(info.timing.directBytes, 0, "pageable outputs take the values through staging");
    assert(info.frames.filter((f) => f.backend === "cuda").length >= 3, JSON.stringify(info.frames));
    const got = await c.decodeManyInto(streams, outs);
    got.forEach((t, i) => {
      assertSameBits(t, decode(streams[i]), `stream ${i}`);
      assert(t.data.buffer === outs[i].buffer, `stream ${i} is in its output`);
    });
    assert(untouched(outs[3].subarray(frames[3].data.length)), "the tail past the values is left alone");
  },
);

cudaTest(
  "decodeManyInto() rejects hostile streams with typed errors and leaves their outputs untouched",
  async (c) => {
    const t = withSpikes(256, 32, 12);
    const s = encode(t, { codec: "fast", errorBound: 1e-2, mode: "rel" });
    const hostile = hostileStreams(s);
    const n = t.data.length;
    const pool = new Float32Array(3 * n + 2 ** 20); // over the registry's minimum: DMA
    // one sub-batch, and one per stream (the hostile one between two others)
    for (const run of [{}, { subBatchBytes: 4 * n }]) {
      for (const [k, h] of hostile.entries()) {
        fillSentinel(pool);
        const outs = viewsOf(pool, [n, n, n]);
        const got = await c.decodeManyIntoWithInfo([s, h, s], outs, undefined, run);
        const r = got.results[1];
        assert(
          r.status === "rejected" && r.reason instanceof CorruptStreamError,
          `hostile ${k}: ${JSON.stringify(r)}`,
        );
        assert(untouched(outs[1]), `hostile ${k}: its output was written`);
        for (const i of [0, 2]) {
          const ok = got.results[i];
          assert(ok.status === "fulfilled", `hostile ${k}: intact stream ${i}`);
          assertSameBits(ok.value, decode(s), `hostile ${k}: intact stream ${i}`);
        }
        await assertRejects(() => c.decodeManyInto([h], [outs[1]]), CorruptStreamError);
        assert(untouched(outs[1]), `hostile ${k}: its output was written (alone)`);
      }
    }
    // an output too short, and a stream that does not decode to f32: that stream's error alone
    const f16 = encode(kvFrame(64, 16, "f16", 9), { codec: "fast", errorBound: 1e-2, mode: "rel" });
    const short = new Float32Array(n - 1), f16Out = new Float32Array(64 * 16), ok = new Float32Array(n);
    fillSentinel(short), fillSentinel(f16Out);
    const got = await c.decodeManyIntoWithInfo([s, f16, s], [short, f16Out, ok]);
    assert(got.results[0].status === "rejected" && got.results[0].reason instanceof RangeError);
    assert(got.results[1].status === "rejected" && got.results[1].reason instanceof TypeError);
    assert(untouched(short) && untouched(f16Out), "outputs of failed streams untouched");
    assert(got.results[2].status === "fulfilled");
    assertSameBits(got.results[2].value, decode(s), "the intact stream");
    await assertRejects(() => c.decodeManyInto([s, s], [ok]), TypeError);
  },
);

cudaTest(
  "encodeManyIntoWithInfo() writes the CPU encoder's bytes into a reused output, else into new memory",
  async (c) => {
    const out = new Uint8Array(8 * 2 ** 20).fill(0xa5);
    const calls: [number, number][][] = [[[8192, 128], [100, 128], [33, 7]], [[1024, 128], [31, 3], [
      4096,
      128,
    ]]];
    for (const [k, shapes] of calls.entries()) {
      const frames = shapes.map(([r, cols], s) => withSpikes(r, cols, 60 + 10 * k + s));
      const o = OPTIONS[k];
      const got = await c.encodeManyIntoWithInfo(frames, o, out, { subBatchBytes: 1 << 20 });
      got.results.forEach((r, i) => {
        assert(r.status === "fulfilled", `call ${k} frame ${i}`);
        assert(same(r.value, encode(frames[i], o)), `call ${k} frame ${i}: stream differs from the CPU's`);
        if (got.frames[i].backend === "cuda") {
          assert(r.value.buffer === out.buffer, `call ${k} frame ${i} in out`);
        }
      });
      assert(got.frames.some((f) => f.backend === "cuda"), JSON.stringify(got.frames));
    }
    // an output too small for the call: new memory, the same bytes
    const frames = [withSpikes(1024, 128, 70)];
    const small = new Uint8Array(64);
    const got = await c.encodeManyIntoWithInfo(frames, OPTIONS[0], small);
    const r = got.results[0];
    assert(
      r.status === "fulfilled" && r.value.buffer !== small.buffer &&
        same(r.value, encode(frames[0], OPTIONS[0])),
    );
    assert(small.every((b) => b === 0), "the small output untouched");
  },
);

/** The tensor's exact fp32 values: what a `streamDtype: "f32"` stream is of. */
const widened = (t: Tensor): Tensor => ({ dtype: "f32", shape: t.shape, data: toFloat32(t) });

/** fp16 bit patterns that widening must carry exactly: ±0, subnormals, ±65504, ±Inf, NaNs with payloads. */
const F16_SPECIALS = [
  0x0000,
  0x8000,
  0x0001,
  0x8001,
  0x03ff,
  0x83ff,
  0x0200,
  0x0400,
  0x7bff,
  0xfbff,
  0x7c00,
  0xfc00,
  0x7c01,
  0x7e00,
  0x7fff,
  0xfc01,
  0xfd55,
  0xffff,
];

/** A KV-like f16 frame salted with every pattern of F16_SPECIALS (one value in 32). */
function f16WithSpecials(rows: number, cols: number, seed: number): Tensor {
  const t = kvFrame(rows, cols, "f16", seed);
  const v = t.data as Uint16Array, r = rng(seed);
  for (let k = 0; k < Math.max(F16_SPECIALS.length, v.length >> 5); k++) {
    v[Math.floor(r() * v.length)] = F16_SPECIALS[k % F16_SPECIALS.length];
  }
  return t;
}

/** An f16 frame of uniformly random bit patterns: every exponent, NaNs and subnormals included. */
function f16RandomBits(rows: number, cols: number, seed: number): Tensor {
  const r = rng(seed);
  return {
    dtype: "f16",
    shape: [rows, cols],
    data: Uint16Array.from({ length: rows * cols }, () => r() * 65536),
  };
}

/** Asserts each stream is the CPU encoder's of the frame's widened values, and decodes within the bound. */
async function assertWidenedStreams(
  c: CudaFastCodec,
  frames: Tensor[],
  got: Awaited<ReturnType<CudaFastCodec["encodeManyWithInfo"]>>,
  o: EncodeOptions,
  ctx: string,
) {
  const streams = got.results.map((r, i) => {
    assert(r.status === "fulfilled", `${ctx} frame ${i}: ${(r as PromiseRejectedResult).reason}`);
    return r.value;
  });
  streams.forEach((s, i) => {
    assert(
      same(s, encode(widened(frames[i]), o)),
      `${ctx} frame ${i} [${frames[i].shape}] ${
        frames[i].dtype
      }: stream differs from the CPU's of the widened values`,
    );
  });
  const back = await c.decodeMany(streams);
  back.forEach((t, i) => {
    assertEquals(t.dtype, "f32", `${ctx} frame ${i}`);
    const w = widened(frames[i]);
    assertBound(w, t, boundOf(w, o), `${ctx} frame ${i}`, { signedZero: false });
  });
}

cudaTest(
  'encodeManyWithInfo() with streamDtype "f32" gives the CPU streams of f16 frames widened, specials and NaN payloads included',
  async (c) => {
    const frames = [
      f16WithSpecials(1000, 128, 81),
      f16RandomBits(256, 128, 82),
      f16WithSpecials(33, 7, 83),
      f16WithSpecials(1, 1, 84),
      kvFrame(4096, 128, "f16", 85),
      f16RandomBits(31, 3, 86),
    ];
    const values = frames.reduce((a, t) => a + t.data.length, 0);
    for (const [k, o] of OPTIONS.entries()) {
      const got = await c.encodeManyWithInfo(frames, o, { streamDtype: "f32", subBatchBytes: 1 << 20 });
      await assertWidenedStreams(c, frames, got, o, `options ${k}`);
      // rel bounds span the whole range: every frame but the one-value one (range 0) on the GPU
      if (o.mode === "rel") {
        assertEquals(
          got.frames.map((f) => f.backend),
          ["cuda", "cuda", "cuda", "cpu", "cuda", "cuda"],
          `options ${k}: ${JSON.stringify(got.frames)}`,
        );
        assertEquals(got.timing.h2dBytes, 2 * values, `options ${k}: f16 frames go up at 2 bytes a value`);
        assert(got.timing.subBatches > 1, `options ${k}: one sub-batch`);
      }
    }
    // not the CPU's f16 stream: an f32 one
    const o = OPTIONS[0];
    const [s] = await c.encodeMany([frames[0]], o);
    assert(same(s, encode(frames[0], o)), "without streamDtype the f16 stream");
    const f32 = (await c.encodeManyWithInfo([frames[0]], o, { streamDtype: "f32" })).results[0];
    assert(f32.status === "fulfilled" && !same(f32.value, s), "the f32 stream differs from the f16 one");
  },
);

cudaTest(
  'encodeManyWithInfo() with streamDtype "f32" takes f32 and f16 frames in one call, sub-batches with and without f16',
  async (c) => {
    // 1 MiB sub-batches: the 4096-row frames each alone (f32, then f16), then mixed ones
    const frames = [
      withSpikes(4096, 128, 91),
      kvFrame(4096, 128, "f16", 92),
      f16WithSpecials(1000, 128, 93),
      withNonFinite(100, 128, 94),
      f16RandomBits(33, 7, 95),
      kvFrame(1024, 128, "f32", 96),
      kvFrame(64, 16, "bf16", 97, true),
      f16WithSpecials(100, 128, 98),
    ];
    for (const [k, o] of OPTIONS.entries()) {
      const run = { streamDtype: "f32" as const, subBatchBytes: 1 << 20 };
      const got = await c.encodeManyWithInfo(frames, o, run);
      await assertWidenedStreams(c, frames, got, o, `mixed, options ${k}`);
      assertEquals(got.frames[6], { backend: "cpu", fallback: "bf16 input" });
      if (o.mode === "rel") {
        assert(
          got.frames.every((f, i) => i === 6 || f.backend === "cuda"),
          `options ${k}: ${JSON.stringify(got.frames)}`,
        );
        const up = frames.reduce(
          (a, t, i) => a + (i === 6 ? 0 : t.data.length * (t.dtype === "f16" ? 2 : 4)),
          0,
        );
        assertEquals(got.timing.h2dBytes, up, `options ${k}: bytes up`);
      }
      // into a reused output: the same bytes
      const out = new Uint8Array(16 * 2 ** 20);
      const into = await c.encodeManyIntoWithInfo(frames, o, out, run);
      into.results.forEach((r, i) => {
        const want = got.results[i] as PromiseFulfilledResult<Uint8Array>;
        assert(r.status === "fulfilled" && same(r.value, want.value), `mixed into, options ${k} frame ${i}`);
      });
    }
  },
);
