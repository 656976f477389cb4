/**
 * The CUDA column of `bench:codec-fast-gpu` (`--encoder cuda`): the fast codec through
 * shared/codec/cuda on the same frames as the CPU and WebGPU columns. GB/s of fp16 input bytes
 * (values × 2): end to end (host f32 frames → streams, streams → host f32 tensors; median of
 * reps after two untimed calls: the first, on pageable frames, is reported as `firstCallMs`;
 * the second page-locks the frames' buffers, as the CUDA encoder does on a buffer's second use), encode twice: `encode` into new memory (`encodeMany`) and `encodeInto` into one
 * output reused across calls (`encodeManyInto`; its streams compared with the first's), decode twice: `decode` into new memory on every call (`decodeMany`), and
 * `decodeInto` into one output buffer reused across calls (`decodeManyInto`, as a decode service
 * with a block-store pool: page-locked on the warm-up call, the values go there by DMA), kernels alone (CUDA events), and the copies alone as they ran in the call
 * (bytes moved / event time). Streams of the CPU-checked frames are compared byte for byte,
 * values bit for bit, and the error against the bound.
 *
 * The same two encodes again with fp16 input (`encodeF16`, `encodeF16Into`): the frames rounded
 * to f16 once, outside the timing, encoded with `streamDtype: "f32"` (half the bytes up, widened
 * on the device), on the same basis: fp16 input bytes, here the bytes the call is given (the
 * widening counts in the library's host → device time, so their kernel time is the f32 input's
 * kernels alone). Their streams are checked against the CPU encoder's of the widened values
 * (the CPU-checked frames) and against a CUDA f32 call on the widened values (every frame).
 * @module
 */
import { decode, encode as cpuEncode, type EncodeOptions, type Tensor } from "../../shared/codec/mod.ts";
import {
  createCudaFastCodec,
  type CudaEncodeResult,
  type CudaFastCodec,
  type CudaRunOptions,
  type CudaTiming,
} from "../../shared/codec/cuda/mod.ts";
import { toFloat32 } from "../../shared/dtype/mod.ts";

const gbs = (bytes: number, ms: number) => bytes / 1e9 / (ms / 1000);
const median = (x: number[]) => [...x].sort((p, q) => p - q)[Math.floor(x.length / 2)];

export interface CudaSideInput {
  frames: Tensor[];
  /** The same frames rounded to f16 (f32ToF16Bits), for the fp16-input encodes. */
  f16Frames: Tensor[];
  o: EncodeOptions;
  reps: number;
  /** Frames the CPU encoded, and their streams. */
  cpuStreams: Map<number, Uint8Array>;
  fp16Bytes: number;
  subBatchBytes: number;
  libPath?: string;
}

function side(t: CudaTiming, e2eMs: number, fp16Bytes: number, firstCallMs: number) {
  return {
    e2eMs,
    e2eGBs: gbs(fp16Bytes, e2eMs),
    kernelMs: t.kernelMs,
    kernelGBs: gbs(fp16Bytes, t.kernelMs),
    firstCallMs,
    firstCallGBs: gbs(fp16Bytes, firstCallMs),
    timing: t,
    h2dGBs: t.h2dMs > 0 ? gbs(t.h2dBytes, t.h2dMs) : null,
    d2hGBs: t.d2hMs > 0 ? gbs(t.d2hBytes, t.d2hMs) : null,
  };
}

const sameBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((v, j) => v === b[j]);

function fulfilled(r: CudaEncodeResult): Uint8Array[] {
  return r.results.map((x, i) => {
    if (x.status === "rejected") throw new Error(`frame ${i}: ${x.reason}`);
    return x.value;
  });
}

/**
 * `frames` encoded end to end, median of `reps` calls after a first one: into new memory, then
 * into one output reused across calls (its streams compared with the first's).
 */
async function timeEncodes(
  cuda: CudaFastCodec,
  x: CudaSideInput,
  frames: Tensor[],
  run: CudaRunOptions = {},
) {
  const t0 = performance.now();
  let enc = await cuda.encodeManyWithInfo(frames, x.o, run);
  const firstEnc = performance.now() - t0;
  await cuda.encodeManyWithInfo(frames, x.o, run); // the frames' second use: page-locked here, untimed
  const times: number[] = [];
  for (let k = 0; k < x.reps; k++) {
    const s = performance.now();
    enc = await cuda.encodeManyWithInfo(frames, x.o, run);
    times.push(performance.now() - s);
  }
  const streams = fulfilled(enc);
  const compressed = streams.reduce((s, b) => s + b.length, 0);
  const encode = side(enc.timing, median(times), x.fp16Bytes, firstEnc);
  // into one output reused across calls (room for the streams and their prefixes)
  const encOut = new Uint8Array(Math.ceil(1.25 * compressed) + 2 ** 20);
  const ei0 = performance.now();
  let encInto = await cuda.encodeManyIntoWithInfo(frames, x.o, encOut, run);
  const firstEncInto = performance.now() - ei0;
  const eitimes: number[] = [];
  for (let k = 0; k < x.reps; k++) {
    const s = performance.now();
    encInto = await cuda.encodeManyIntoWithInfo(frames, x.o, encOut, run);
    eitimes.push(performance.now() - s);
  }
  let encIntoSame = true, encIntoInOut = true;
  encInto.results.forEach((r, i) => {
    encIntoSame &&= r.status === "fulfilled" && sameBytes(r.value, streams[i]);
    encIntoInOut &&= r.status === "fulfilled" && r.value.buffer === encOut.buffer;
  });
  const encodeInto = {
    ...side(encInto.timing, median(eitimes), x.fp16Bytes, firstEncInto),
    sameStreams: encIntoSame,
    allInOutput: encIntoInOut,
  };
  return { enc, streams, compressed, encode, encodeInto };
}

/** Runs the CUDA side; `{ error }` when there is no library or device. */
export async function runCudaSide(x: CudaSideInput): Promise<Record<string, unknown>> {
  let cuda;
  try {
    cuda = createCudaFastCodec({ libPath: x.libPath, subBatchBytes: x.subBatchBytes });
  } catch (err) {
    console.error(`no CUDA: ${(err as Error).message}`);
    return { error: (err as Error).message };
  }
  const { enc, streams, compressed, encode, encodeInto } = await timeEncodes(cuda, x, x.frames);
  console.error(
    `cuda encode: kernels ${encode.kernelGBs.toFixed(1)} GB/s, e2e ${
      encode.e2eGBs.toFixed(2)
    } GB/s (first call ${encode.firstCallGBs.toFixed(2)})`,
  );
  console.error(`cuda encode into a reused output: e2e ${encodeInto.e2eGBs.toFixed(2)} GB/s`);

  const limits = { maxElements: 2 ** 30 };
  const d0 = performance.now();
  let dec = await cuda.decodeManyWithInfo(streams, limits);
  const firstDec = performance.now() - d0;
  const dtimes: number[] = [];
  for (let k = 0; k < x.reps; k++) {
    const s = performance.now();
    dec = await cuda.decodeManyWithInfo(streams, limits);
    dtimes.push(performance.now() - s);
  }
  const decodeSide = {
    ...side(dec.timing, median(dtimes), x.fp16Bytes, firstDec),
    parseMs: dec.parseMs,
  };
  console.error(
    `cuda decode: kernels ${decodeSide.kernelGBs.toFixed(1)} GB/s, e2e ${decodeSide.e2eGBs.toFixed(2)} GB/s`,
  );

  // into outputs reused across calls: one buffer, page-locked by the warm-up call
  const pool = new Float32Array(x.frames.reduce((a, t) => a + t.data.length, 0));
  let at = 0;
  const outs = x.frames.map((t) => pool.subarray(at, at += t.data.length));
  const i0 = performance.now();
  let into = await cuda.decodeManyIntoWithInfo(streams, outs, limits);
  const firstInto = performance.now() - i0;
  const itimes: number[] = [];
  for (let k = 0; k < x.reps; k++) {
    const s = performance.now();
    into = await cuda.decodeManyIntoWithInfo(streams, outs, limits);
    itimes.push(performance.now() - s);
  }
  const intoSide = {
    ...side(into.timing, median(itimes), x.fp16Bytes, firstInto),
    parseMs: into.parseMs,
    directGiB: into.timing.directBytes / 2 ** 30,
  };
  console.error(
    `cuda decode into reused outputs: e2e ${
      intoSide.e2eGBs.toFixed(2)
    } GB/s (first call, page-locking them, ${intoSide.firstCallGBs.toFixed(2)}); ${
      intoSide.directGiB.toFixed(2)
    } GiB by DMA into them`,
  );

  // fp16 input, widened on the device: f32 streams of the widened values. After the f32 runs, so
  // that the page-locking of its frames lands in none of their times (the widened copies the
  // check encodes once stay pageable)
  const f16 = await timeEncodes(cuda, x, x.f16Frames, { streamDtype: "f32" });
  console.error(
    `cuda encode, fp16 input: kernels ${f16.encode.kernelGBs.toFixed(1)} GB/s, e2e ${
      f16.encode.e2eGBs.toFixed(2)
    } GB/s (host → device ${f16.encode.h2dGBs?.toFixed(1)} GB/s of bytes moved); into a reused output ${
      f16.encodeInto.e2eGBs.toFixed(2)
    } GB/s`,
  );
  const f16Checked = await checkF16Streams(cuda, x, f16.streams);

  let bytesSame = true, bitsSame = true, intoSame = true, worst = 0;
  for (const [i, c] of x.cpuStreams) {
    const s = streams[i];
    bytesSame &&= c.length === s.length && c.every((b, j) => b === s[j]);
    const ref = decode(c).data as Float32Array;
    const r = dec.results[i];
    const got = r.status === "fulfilled" ? r.value.data as Float32Array : undefined;
    const rb = new Uint32Array(ref.buffer, ref.byteOffset, ref.length);
    const gb = got ? new Uint32Array(got.buffer, got.byteOffset, got.length) : undefined;
    bitsSame &&= gb !== undefined && rb.every((v, j) => v === gb[j]);
    const ri = into.results[i];
    const ib = ri.status === "fulfilled"
      ? new Uint32Array(ri.value.data.buffer, ri.value.data.byteOffset, ri.value.data.length)
      : undefined;
    intoSame &&= ib !== undefined && ib.buffer === pool.buffer && rb.every((v, j) => v === ib[j]);
    const v = x.frames[i].data as Float32Array;
    const eb = (x.o as { errorBound: number }).errorBound;
    const bound = (x.o as { mode?: string }).mode === "rel"
      ? eb * (v.reduce((m, y) => Math.max(m, y), -Infinity) - v.reduce((m, y) => Math.min(m, y), Infinity))
      : eb;
    const gv = got ?? ref;
    for (let j = 0; j < v.length; j++) worst = Math.max(worst, Math.abs(gv[j] - v[j]) / bound);
  }
  return {
    device: cuda.device,
    ratio: x.fp16Bytes / compressed,
    compressedMiB: compressed / 2 ** 20,
    framesOnGpu: enc.frames.filter((f) => f.backend === "cuda").length,
    fallbacks: [...new Set(enc.frames.map((f) => f.fallback).filter(Boolean))],
    decodeFramesOnGpu: dec.frames.filter((f) => f.backend === "cuda").length,
    encode,
    encodeInto,
    encodeF16: {
      ...f16.encode,
      ratio: x.fp16Bytes / f16.compressed,
      framesOnGpu: f16.enc.frames.filter((f) => f.backend === "cuda").length,
      streamDtype: "f32",
    },
    encodeF16Into: f16.encodeInto,
    decode: decodeSide,
    decodeInto: intoSide,
    memory: cuda.memory(),
    checked: {
      frames: x.cpuStreams.size,
      byteIdentical: bytesSame,
      bitIdentical: bitsSame,
      intoBitIdentical: intoSame,
      maxErrOverBound: worst,
      ...f16Checked,
    },
  };
}

/**
 * The fp16-input streams against the CPU encoder's of the widened values (the CPU-checked
 * frames) and against one CUDA f32 call on the widened values (every frame).
 */
async function checkF16Streams(cuda: CudaFastCodec, x: CudaSideInput, streams: Uint8Array[]) {
  const widened = x.f16Frames.map((t): Tensor => ({ dtype: "f32", shape: t.shape, data: toFloat32(t) }));
  let f16ByteIdentical = true;
  for (const i of x.cpuStreams.keys()) f16ByteIdentical &&= sameBytes(streams[i], cpuEncode(widened[i], x.o));
  const asF32 = fulfilled(await cuda.encodeManyWithInfo(widened, x.o));
  const f16SameAsWidenedF32 = asF32.every((s, i) => sameBytes(s, streams[i]));
  return { f16ByteIdentical, f16SameAsWidenedF32 };
}
