/**
 * The fast codec on WebGPU against the CPU codec, on whatever adapter WebGPU offers (Mesa's
 * software adapter here): GPU streams are the CPU encoder's bytes, GPU decoding gives the CPU
 * decoder's values bit for bit and its errors, both directions, batches of mixed frames.
 * Without an adapter every test is skipped, saying why.
 */
import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { crc32 } from "node:zlib";
import {
  CorruptStreamError,
  decode,
  decodeWithInfo,
  encode,
  type EncodeOptions,
  type Tensor,
} from "../../mod.ts";
import { ByteReader, ByteWriter } from "../../bytes.ts";
import { readHeader, writeHeader } from "../../container.ts";
import { loadLossless, saveLossless } from "../../lossless/zstd.ts";
import { fromFloat32 } from "../../../dtype/mod.ts";
import { kvFrame, rng } from "../../testdata/gen.ts";
import { assertBound, assertSameBits } from "../../_testing.ts";
import { acquireGpu, GpuUnavailableError } from "../device.ts";
import { createGpuFastCodec, gpuFastBatchEncoder, type GpuFastCodec } from "./mod.ts";
import { f32Bits, frameParams } from "./params.ts";

/** Why there is no adapter (undefined when there is one). */
const noGpu: string | undefined = await (async () => {
  try {
    (await acquireGpu({ timeoutMs: 20_000 })).device.destroy();
    return undefined;
  } catch (err) {
    if (err instanceof GpuUnavailableError) return err.message;
    throw err;
  }
})();

let shared: Promise<GpuFastCodec> | undefined;
const gpu = () => shared ??= createGpuFastCodec({ timeoutMs: 20_000 });

function gpuTest(name: string, fn: () => Promise<void>): void {
  Deno.test({
    name: noGpu ? `${name} (skipped: ${noGpu})` : name,
    ignore: noGpu !== undefined,
    sanitizeResources: false,
    sanitizeOps: false,
    fn,
  });
}

const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

/** Encodes on the GPU and asserts every stream is the CPU encoder's; returns streams and backends. */
async function assertSameStreams(
  frames: Tensor[],
  opts: EncodeOptions[],
  ctx: string,
  maxBatchBytes?: number,
) {
  const g = await gpu();
  const r = await g.encodeManyWithInfo(frames, opts, { maxBatchBytes });
  const streams = r.results.map((s, i) => {
    if (s.status === "rejected") throw new Error(`${ctx} frame ${i}: ${s.reason}`);
    const cpu = encode(frames[i], opts[i]);
    assert(
      same(s.value, cpu),
      `${ctx} frame ${i} [${frames[i].shape}] ${JSON.stringify(opts[i])}: not the CPU's bytes`,
    );
    return s.value;
  });
  return { streams, backends: r.frames.map((f) => f.backend), info: r };
}

/** f32 values with NaN, ±Inf, -0, 0 and subnormals salted in. */
function salted(t: Tensor, r: () => number): Tensor {
  const x = (t.data as Float32Array).slice();
  const pool = [NaN, Infinity, -Infinity, -0, 0, 1e-40, -3e-39, 1.5e-45];
  for (let s = 0; s < Math.max(1, x.length >> 6); s++) x[Math.floor(r() * x.length)] = pool[s % pool.length];
  return { dtype: "f32", shape: t.shape, data: x };
}

gpuTest(
  "encodeMany() gives the CPU encoder's bytes over random shapes, bounds, predictors and specials",
  async () => {
    const r = rng(4242);
    let onGpu = 0, total = 0;
    for (let call = 0; call < 3; call++) {
      const frames: Tensor[] = [], opts: EncodeOptions[] = [];
      for (let k = 0; k < 40; k++) {
        const rows = 1 + Math.floor(r() * 120), cols = [1, 3, 8, 17, 64, 128, 200][Math.floor(r() * 7)];
        let t = kvFrame(rows, cols, "f32", 1000 * call + k);
        if (r() < 0.4) t = salted(t, r);
        if (r() < 0.15) { // tiny values: subnormal products
          t = { ...t, data: (t.data as Float32Array).map((v) => v * 1e-36) };
        }
        frames.push(t);
        opts.push({
          codec: "fast",
          errorBound: 10 ** (-6 + 5.5 * r()),
          mode: r() < 0.5 ? "abs" : "rel",
          fastPredictor: (["auto", "none", "delta"] as const)[Math.floor(r() * 3)],
        });
      }
      const { backends } = await assertSameStreams(frames, opts, `call ${call}`);
      onGpu += backends.filter((b) => b === "webgpu").length;
      total += frames.length;
    }
    assert(onGpu >= total / 2, `${onGpu} of ${total} frames on the GPU`);
  },
);

gpuTest("the GPU rounds ties to even and keeps subnormal inputs where the CPU does", async () => {
  // abs bound: the step does not depend on the values, only on their largest magnitude (1)
  const o = { codec: "fast", errorBound: 1e-3, mode: "abs", fastPredictor: "none" } as const;
  const key = (v: number) => (v < 0 || Object.is(v, -0) ? ~f32Bits(v) : f32Bits(v) | 0x80000000) >>> 0;
  const p = frameParams({ errorBound: 1e-3, mode: "abs", predictor: "none" }, key(-1), key(1));
  assert(typeof p !== "string");
  // values whose fp32 product with inv is exactly k + 1/2: a few ulps around (k + 1/2) / inv
  const ties: number[] = [-1, 1];
  const u = new Uint32Array(1), f = new Float32Array(u.buffer);
  for (let k = -300; k < 300; k++) {
    for (let d = -4; d <= 4; d++) {
      f[0] = (k + 0.5) / p.inv;
      u[0] += d;
      if (Math.fround(f[0] * p.inv) === k + 0.5 && Math.abs(f[0]) <= 1) ties.push(f[0]);
    }
  }
  assert(ties.length > 50, `${ties.length} exact ties found`);
  for (const v of [1e-40, -1e-40, 1.4e-45, -1.17e-38, 1.18e-38, 0, -0]) ties.push(v);
  const t = fromFloat32(Float32Array.from(ties), [ties.length, 1], "f32");
  const { backends } = await assertSameStreams([t, { ...t, shape: [1, ties.length] }], [o, o], "ties");
  assertEquals(backends, ["webgpu", "webgpu"]);
  // a step just above and just below 2^-124: the GPU takes the first, leaves the second
  const tiny = fromFloat32(Float32Array.from({ length: 96 }, (_, i) => (i % 7 - 3) * 1e-39), [32, 3], "f32");
  const ebs = [2 ** -124, 2 ** -126];
  const r = await assertSameStreams([tiny, tiny], ebs.map((eb) => ({ ...o, errorBound: eb })), "tiny steps");
  assertEquals(r.backends, ["webgpu", "cpu"]);
});

gpuTest(
  "streams cross-decode: GPU→CPU within the bound, CPU→GPU and GPU→GPU bit-identical to the CPU decoder",
  async () => {
    const g = await gpu();
    const r = rng(99);
    const frames: Tensor[] = [], opts: EncodeOptions[] = [];
    for (let k = 0; k < 24; k++) {
      const rows = [1, 31, 32, 33, 100, 257][k % 6], cols = [1, 5, 64, 128][k % 4];
      frames.push(k % 3 === 0 ? salted(kvFrame(rows, cols, "f32", k), r) : kvFrame(rows, cols, "f32", k));
      opts.push({
        codec: "fast",
        errorBound: [1e-1, 1e-2, 1e-3, 1e-4][k % 4],
        mode: k % 2 ? "abs" : "rel",
        fastPredictor: (["auto", "none", "delta"] as const)[k % 3],
      });
    }
    const gpuStreams = await g.encodeMany(frames, opts);
    const cpuStreams = frames.map((t, i) => encode(t, opts[i]));
    const fromGpu = await g.decodeManyWithInfo([...cpuStreams, ...gpuStreams]);
    fromGpu.frames.forEach((f, i) => assertEquals(f.backend, "webgpu", `stream ${i}: ${f.fallback}`));
    frames.forEach((t, i) => {
      const viaCpu = decodeWithInfo(gpuStreams[i]);
      assertBound(t, viaCpu.tensor, viaCpu.info.eb!, `frame ${i} gpu->cpu`, { signedZero: false });
      const ref = decode(cpuStreams[i]);
      for (
        const [s, what] of [[fromGpu.results[i], "cpu->gpu"], [
          fromGpu.results[frames.length + i],
          "gpu->gpu",
        ]] as const
      ) {
        assert(s.status === "fulfilled");
        assertEquals(s.value.shape, t.shape);
        assertSameBits(s.value, ref, `frame ${i} ${what}`);
      }
    });
  },
);

gpuTest(
  "a batch mixing shapes, dtypes, codecs, empty frames and batch cuts gives the CPU codec's streams",
  async () => {
    const r = rng(7);
    const frames: Tensor[] = [
      kvFrame(1024, 128, "f32", 1),
      { dtype: "f32", shape: [], data: new Float32Array([3.25]) },
      { dtype: "f32", shape: [700], data: Float32Array.from({ length: 700 }, (_, i) => Math.sin(i / 9)) },
      { dtype: "f32", shape: [2, 3, 40], data: Float32Array.from({ length: 240 }, () => r() - 0.5) },
      { dtype: "f32", shape: [0, 64], data: new Float32Array(0) },
      kvFrame(77, 64, "f16", 2, true),
      kvFrame(33, 3000, "f32", 3),
      kvFrame(64, 16, "f32", 4),
      kvFrame(64, 16, "f32", 5),
      { dtype: "f32", shape: [40, 8], data: new Float32Array(320).fill(NaN) },
      { dtype: "f32", shape: [40, 8], data: new Float32Array(320).fill(2.5) },
    ];
    const o: EncodeOptions = { codec: "fast", errorBound: 1e-2, mode: "rel" };
    const opts = frames.map((_, i): EncodeOptions =>
      i === 1
        ? { ...o, mode: "abs" }
        : i === 7
        ? { codec: "kvsort", errorBound: 1e-2 }
        : i === 8
        ? { ...o, errorBound: 0 }
        : o
    );
    // on the CPU: empty, f16, kvsort, eb 0, all NaN (no finite range: eb 0), constant (range 0: eb 0)
    const { backends } = await assertSameStreams(frames, opts, "mixed");
    assertEquals(backends, [
      "webgpu",
      "webgpu",
      "webgpu",
      "webgpu",
      "cpu",
      "cpu",
      "webgpu",
      "cpu",
      "cpu",
      "cpu",
      "cpu",
    ]);
    // the same frames cut into batches: 512 KiB holds the [1024, 128] frame alone, then the other f32 ones
    const cut = await assertSameStreams(frames, opts, "cut", 2 ** 19);
    assertEquals(cut.info.batches.map((b) => b.frames), [1, 7]); // eb 0, NaN and constant leave after the range
    const back = await (await gpu()).decodeManyWithInfo(cut.streams, {}, { maxBatchBytes: 2 ** 19 + 4096 });
    assertEquals(back.batches.length, 2);
    back.results.forEach((t, i) => {
      assert(t.status === "fulfilled");
      assertSameBits(t.value, decode(cut.streams[i]), `frame ${i}`);
    });
  },
);

gpuTest("options errors are the CPU encoder's; one bad frame fails alone in encodeManySettled", async () => {
  const g = await gpu();
  const t = kvFrame(40, 8, "f32", 1);
  const good: EncodeOptions = { codec: "fast", errorBound: 1e-3 };
  const bad = { codec: "fast", fastPredictor: "lorenzo" } as unknown as EncodeOptions;
  await assertRejects(() => g.encodeMany([t, t], [good, bad]), RangeError, "predictor");
  const s = await g.encodeManySettled([t, t, t], [good, { ...good, errorBound: -1 }, good]);
  assertEquals(s.map((x) => x.status), ["fulfilled", "rejected", "fulfilled"]);
  assert(s[0].status === "fulfilled" && same(s[0].value, encode(t, good)));
  const rel = { codec: "fast", errorBound: 1e300, mode: "rel" } as const;
  const wide = fromFloat32(Float32Array.from([-3e38, 3e38]), [2, 1], "f32");
  await assertRejects(() => g.encodeMany([wide], [rel]), RangeError, "not finite");
  await assertRejects(() => g.encodeMany([t], [good, good]), TypeError);
});

/** A copy of `stream` with its body changed by `edit` and the digest made right again. */
function reseal(stream: Uint8Array, edit: (body: Uint8Array, dv: DataView) => void): Uint8Array {
  const out = stream.slice();
  const r = new ByteReader(out);
  readHeader(r, 2 ** 27);
  const digestAt = r.pos - 4;
  const body = loadLossless(r, 2 ** 30);
  edit(body, new DataView(body.buffer, body.byteOffset, body.byteLength));
  new DataView(out.buffer).setUint32(digestAt, crc32(body) >>> 0, true);
  return out;
}

/** A stream around a hand-made body. */
function sealed(shape: number[], body: Uint8Array): Uint8Array {
  const w: ByteWriter = writeHeader(
    { codec: "fast", dtype: "f32", shape, digest: crc32(body) >>> 0 },
    body.length,
  );
  saveLossless(body, "none", 1, w);
  return w.finish();
}

gpuTest(
  "hostile streams give the CPU decoder's CorruptStreamError; codes past 2^23 decode as the CPU does",
  async () => {
    const g = await gpu();
    const spike = Float32Array.from({ length: 64 * 8 }, (_, i) => Math.sin(i / 5));
    spike[9 * 8 + 2] = 50; // an outlier in block (0, 2)
    spike[40 * 8 + 1] = NaN, spike[41 * 8 + 1] = Infinity; // two exceptions
    const t = fromFloat32(spike, [64, 8], "f32");
    const stream = await (await g.encodeMany([t], {
      codec: "fast",
      errorBound: 1e-3,
      mode: "abs",
      fastPredictor: "none",
    }))[0];
    const info = decodeWithInfo(stream).info;
    assertEquals([info.outliers, info.exceptions], [1, 2]);
    const widthsAt = 44; // 16 blocks of width bytes; the host checks sizes, the GPU the widths
    const hostile: [string, Uint8Array][] = [
      ["truncated", stream.subarray(0, stream.length - 5)],
      [
        "flipped bit",
        (() => {
          const s = stream.slice();
          s[s.length - 20] ^= 4;
          return s;
        })(),
      ],
      ["stray byte", new Uint8Array([...stream, 0])],
      ["width byte with bit 7", reseal(stream, (b) => void (b[widthsAt + 3] |= 0x80))],
      ["width over 31", reseal(stream, (b) => void (b[widthsAt + 5] = 40))],
      ["widths disagree with payload words", reseal(stream, (b) => void (b[widthsAt + 4] += 1))],
      ["outlier flag on a second block", reseal(stream, (b) => void (b[widthsAt + 6] |= 0x40))],
      [
        "payload words off by one",
        reseal(stream, (_, dv) => dv.setUint32(40, dv.getUint32(40, true) + 1, true)),
      ],
      [
        "exceptions out of order",
        reseal(stream, (b, dv) => {
          const at = b.length - 16;
          const a = dv.getUint32(at, true);
          dv.setUint32(at, dv.getUint32(at + 4, true), true);
          dv.setUint32(at + 4, a, true);
        }),
      ],
      ["exception past the end", reseal(stream, (b, dv) => dv.setUint32(b.length - 12, 512, true))],
      ["bad tag", reseal(stream, (b) => void (b[0] = 0x47))],
      ["subnormal step", reseal(stream, (_, dv) => dv.setFloat64(20, Math.fround(1e-40), true))],
    ];
    for (const [what, bad] of hostile) {
      let cpuError: Error | undefined;
      try {
        decode(bad);
      } catch (err) {
        cpuError = err as Error;
      }
      if (cpuError === undefined) { // a stream the CPU still reads (the subnormal step): same values
        assertSameBits((await g.decodeMany([bad]))[0], decode(bad), what);
        continue;
      }
      assert(cpuError instanceof CorruptStreamError, `${what}: ${cpuError}`);
      await assertRejects(() => g.decodeMany([stream, bad]), CorruptStreamError, cpuError.message, what);
      const settled = await g.decodeManyWithInfo([bad, stream]);
      assertEquals(settled.results.map((s) => s.status), ["rejected", "fulfilled"], what);
    }
    // an outlier slot past a short block's end (one group of 8 rows, one column, one spike)
    const short = fromFloat32(Float32Array.from([0, 0.01, 0.02, 7, 0.01, 0, 0.02, 0.01]), [8, 1], "f32");
    const ss =
      (await g.encodeMany([short], { codec: "fast", errorBound: 1e-3, mode: "abs", fastPredictor: "none" }))[
        0
      ];
    assertEquals(decodeWithInfo(ss).info.outliers, 1);
    const badSlot = reseal(ss, (b) => void (b[48] = (b[48] & ~31) | 20));
    assertThrows(() => decode(badSlot), CorruptStreamError, "outlier slot");
    await assertRejects(() => g.decodeMany([badSlot]), CorruptStreamError, "outlier slot");

    // codes of width 26 whose running sum reaches 2^24: valid for the CPU decoder, decoded as it does
    const big = new Uint8Array(44 + 4 + 4 * 26);
    const dv = new DataView(big.buffer);
    big[0] = 0x46, big[1] = 1; // delta
    dv.setFloat64(4, 1e-3, true), dv.setFloat64(12, 1e-3, true), dv.setFloat64(20, Math.fround(2e-3), true);
    dv.setUint32(40, 26, true);
    big[44] = 26;
    for (let w = 0; w < 26; w++) dv.setUint32(48 + 4 * w, 0x55555555 ^ (w * 0x01010101), true);
    const s = sealed([32, 1], big);
    const ref = decode(s);
    const d = await g.decodeManyWithInfo([s]);
    assertEquals(d.frames[0], { backend: "cpu", fallback: "codes past 2^23" });
    assert(d.results[0].status === "fulfilled");
    assertSameBits(d.results[0].value, ref, "big codes");
  },
);

gpuTest(
  "gpuFastBatchEncoder() runs on a device of acquireGpu(), compiles on first use, fails cleanly when the device is lost",
  async () => {
    const handle = await acquireGpu({ timeoutMs: 20_000 });
    try {
      const fast = gpuFastBatchEncoder(handle);
      const frames = [kvFrame(96, 128, "f32", 8), kvFrame(50, 64, "f32", 9)];
      const o: EncodeOptions = { codec: "fast", errorBound: 1e-2 };
      const streams = await fast.encodeMany(frames, o);
      streams.forEach((s, i) => assert(same(s, encode(frames[i], o)), `frame ${i}`));
      const back = await fast.decodeMany(streams);
      back.forEach((t, i) => assertSameBits(t, decode(streams[i]), `frame ${i}`));
      // a lost device fails the batch (an error, never streams read from invalid buffers)
      handle.device.destroy();
      await assertRejects(() => fast.encodeMany(frames, o));
      await assertRejects(() => fast.decodeMany(streams));
    } finally {
      handle.device.destroy();
      (await gpu()).destroy();
    }
  },
);
