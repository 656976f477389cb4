/**
 * Many frames through the fast encoder on CUDA in one library call (../cuda/fast_encode.cu):
 * streams byte for byte `encode(t, { codec: "fast", ... })` of ../codec.ts, or with
 * `streamDtype: "f32"` byte for byte `encode(toFloat32(t), ...)`: f32 streams of the frames'
 * exact fp32 values, whose f16 frames go up at 2 bytes a value and are widened on the device.
 *
 * | step | where |
 * |---|---|
 * | options, which frames the GPU takes, page-locking the frames' buffers (once each) | host |
 * | values up (DMA; f16 frames as they are, then widened exactly into the f32 input), range, step, residuals, decisions, offsets by scan, packing, headers | GPU, sub-batches pipelined on two streams |
 * | each frame's sizes, then exactly the compressed bytes | GPU → pinned host chunks |
 * | each body into one buffer and its crc32 in the same pass (host threads, in the library); container prefixes (dtype f32) in place | host |
 *
 * Frames the GPU path does not take (other codecs, bf16 input, f16 input unless the call asks
 * for f32 streams, empty frames, `eb` 0, the per-value-check case of `quantStep`, steps under
 * 2^-124: ../webgpu/fast/params.ts) are encoded by the CPU encoder while the GPU works, so their
 * streams and errors are the CPU's (of `toFloat32(t)` when the call asks for f32 streams). The
 * streams of a call are views into one buffer (the caller's, with `encodeManyInto`).
 * @module
 */
import { encode as cpuEncode } from "../codec.ts";
import { checkTensor, type Tensor, toFloat32 } from "../../dtype/mod.ts";
import type { EncodeOptions } from "../types.ts";
import { prefixBase, writePrefix } from "../webgpu/fast/assemble.ts";
import { fastOptions, sampledValues } from "../webgpu/fast/params.ts";
import { type CudaLibrary, ED, EI, EO, errBuf, errText, TM } from "./library.ts";
import type { HostRegistry } from "./pinned.ts";

/** Where a frame was encoded or decoded, and why the CPU took it. */
export interface CudaFrameInfo {
  backend: "cuda" | "cpu";
  fallback?: string;
}

/** Host and device time of one call (ms; bytes as moved). */
export interface CudaTiming {
  /**
   * Host → device copies (with the widening of f16 frames on the device), kernels and device →
   * host copies (CUDA events; they overlap across sub-batches).
   */
  h2dMs: number;
  kernelMs: number;
  d2hMs: number;
  /** The library call, host clock. */
  callMs: number;
  /** As they crossed the bus: 2 a value of f16 frames. */
  h2dBytes: number;
  d2hBytes: number;
  subBatches: number;
  /** Of `d2hBytes`, those that went by DMA straight into the caller's page-locked memory. */
  directBytes: number;
  /** Page-locking new buffers before the call. */
  registerMs: number;
  /** Chunks into one buffer and crc32s (host threads), prefixes, after it. */
  assembleMs: number;
}

export interface CudaEncodeResult {
  results: PromiseSettledResult<Uint8Array>[];
  frames: CudaFrameInfo[];
  timing: CudaTiming;
}

/** Options of a call. */
export interface CudaRunOptions {
  /**
   * Bytes of f32 values on the device per pipelined sub-batch (default 64 MiB; an f16 frame
   * counts 4 bytes a value, its widened size, though it uploads 2).
   */
  subBatchBytes?: number;
  /**
   * `input` (default): each stream has its frame's dtype, `encode(t, opts)`; f16 and bf16 frames
   * go to the CPU encoder. `f32`: every stream is the f32 stream of the frame's exact fp32
   * values, `encode(toFloat32(t), opts)` (it decodes to f32, within the bound of the 16-bit
   * values too, since widening is exact): f16 frames go up as they are, half the bytes of their
   * f32 values, and are widened on the device; bf16 frames and the frames the GPU leaves are
   * encoded so on the CPU.
   */
  streamDtype?: "input" | "f32";
}

const PRED = { none: 0, delta: 1, auto: 2 } as const;
const STATUS: Record<number, string> = {
  1: "error bound not finite",
  2: "error bound 0 (every value checked)",
  3: "values over 2^15 bounds from 0 (every value checked)",
  4: "quantization step out of the GPU's range",
  5: "stream over the sub-batch's output room",
};

export function emptyTiming(): CudaTiming {
  return {
    h2dMs: 0,
    kernelMs: 0,
    d2hMs: 0,
    callMs: 0,
    h2dBytes: 0,
    d2hBytes: 0,
    subBatches: 0,
    directBytes: 0,
    registerMs: 0,
    assembleMs: 0,
  };
}

/**
 * Encodes `frames` (one options object each, or one for all), each settling on its own. With
 * `into`, the GPU frames' streams are views into it when it holds them all (a buffer reused
 * across calls: its pages are already there), else into new memory.
 */
export async function cudaFastEncodeMany(
  lib: CudaLibrary,
  registry: HostRegistry,
  frames: Tensor[],
  opts: EncodeOptions | EncodeOptions[],
  run: CudaRunOptions = {},
  into?: Uint8Array,
): Promise<CudaEncodeResult> {
  if (Array.isArray(opts) && opts.length !== frames.length) {
    throw new TypeError(`${frames.length} frames but ${opts.length} option sets`);
  }
  const subBatchBytes = run.subBatchBytes ?? 64 * 2 ** 20;
  if (!Number.isSafeInteger(subBatchBytes) || subBatchBytes <= 0) { // -1 would reach the library as 2^64 - 1
    throw new RangeError(`CUDA encode: subBatchBytes must be a positive integer, got ${subBatchBytes}`);
  }
  const streamDtype = run.streamDtype ?? "input";
  if (streamDtype !== "input" && streamDtype !== "f32") {
    throw new RangeError(`CUDA encode: streamDtype is input or f32, got '${streamDtype}'`);
  }
  const asF32 = streamDtype === "f32";
  // what each frame's stream is of: with f32 streams, the CPU too encodes the exact fp32 values
  const source = (t: Tensor): Tensor =>
    asF32 && t.dtype !== "f32" ? { dtype: "f32", shape: t.shape, data: toFloat32(t) } : t;
  const optsOf = (i: number) => Array.isArray(opts) ? opts[i] : opts;
  const results: PromiseSettledResult<Uint8Array>[] = new Array(frames.length);
  const info: CudaFrameInfo[] = new Array(frames.length);
  const cpu: number[] = [];
  const toCpu = (i: number, why: string) => {
    info[i] = { backend: "cpu", fallback: why };
    cpu.push(i);
  };
  const runCpu = () => {
    for (const i of cpu.splice(0)) {
      try {
        results[i] = { status: "fulfilled", value: cpuEncode(source(frames[i]), optsOf(i)) };
      } catch (reason) {
        results[i] = { status: "rejected", reason };
      }
    }
  };

  // ---- which frames the GPU takes ------------------------------------------------------------
  const items: { i: number; rows: number; cols: number }[] = [];
  frames.forEach((t, i) => {
    try {
      checkTensor(t);
      const o = optsOf(i);
      if (o.codec !== "fast") return toCpu(i, `codec ${o.codec}`);
      fastOptions(o);
      if (t.dtype === "bf16" || (t.dtype === "f16" && !asF32)) return toCpu(i, `${t.dtype} input`);
      const n = t.data.length;
      if (n === 0) return toCpu(i, "empty frame");
      const cols = t.shape.length === 0 ? 1 : t.shape[t.shape.length - 1];
      const rows = n / cols;
      if (n >= 2 ** 31) return toCpu(i, "frame of 2^31 values or more");
      if (sampledValues(rows, cols) * 25 >= 2 ** 32) return toCpu(i, "predictor sample over 2^32 bits");
      items.push({ i, rows, cols });
    } catch (reason) {
      info[i] = { backend: "cpu", fallback: "bad frame or options" };
      results[i] = { status: "rejected", reason };
    }
  });
  const timing = emptyTiming();
  if (items.length === 0) {
    runCpu();
    return { results, frames: info, timing };
  }

  // ---- the frame table; the frames' buffers page-locked once ----------------------------------
  const t0 = performance.now();
  const nf = items.length;
  const table = new Float64Array(nf * EI.words);
  registry.forCall(items.map(({ i }) => frames[i].data)); // nothing of ours is in flight now
  items.forEach(({ i, rows, cols }, f) => {
    const t = frames[i], o = fastOptions(optsOf(i)), e = f * EI.words;
    table[e + EI.ptr] = Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(t.data)));
    table[e + EI.rows] = rows;
    table[e + EI.cols] = cols;
    table[e + EI.bound] = o.errorBound;
    table[e + EI.mode] = o.mode === "rel" ? 1 : 0;
    table[e + EI.pred] = PRED[o.predictor];
    table[e + EI.reserve] = prefixBase(t.shape) + 5; // the body length's varint: 5 bytes at most
    table[e + EI.dtype] = t.dtype === "f16" ? ED.f16 : ED.f32;
  });
  timing.registerMs = performance.now() - t0;

  // ---- the GPU, while the CPU takes the frames it must ---------------------------------------
  const res = new Float64Array(nf * EO.words);
  const chunkTable = new Float64Array(2 * nf);
  const chunks = new Uint32Array(1);
  const tm = new Float64Array(TM.words);
  const err = errBuf();
  const call = lib.symbols.kvr_fast_encode(
    table,
    nf,
    res,
    chunkTable,
    nf,
    chunks,
    BigInt(subBatchBytes),
    tm,
    err,
    err.length,
  );
  runCpu();
  // a failed call (device lost, out of memory) rejects its GPU frames one by one, as a failed
  // WebGPU batch does, so that a caller can encode them on the CPU (`encodeManySettled`)
  const rejectGpu = (reason: Error, keep: (f: number) => boolean = () => false) => {
    items.forEach(({ i }, f) => {
      if (keep(f)) return;
      info[i] = { backend: "cuda" };
      results[i] = { status: "rejected", reason };
    });
  };
  if ((await call) !== 0) {
    rejectGpu(new Error(`CUDA fast encode failed: ${errText(err)}`));
    return { results, frames: info, timing };
  }

  // ---- one buffer (host threads copy the chunks and take each body's crc32), prefixes in place -
  const t1 = performance.now();
  let total = 0;
  for (let k = 0; k < chunks[0]; k++) total += chunkTable[2 * k + 1];
  const out = into && into.length >= total ? into.subarray(0, total) : new Uint8Array(total);
  const bodies = new Float64Array(2 * nf);
  items.forEach((_, f) => {
    const e = f * EO.words;
    if (res[e + EO.status] === 0) bodies[2 * f] = res[e + EO.bodyAt], bodies[2 * f + 1] = res[e + EO.bodyLen];
  });
  const crcs = new Uint32Array(nf);
  if (
    total > 0 &&
    (await lib.symbols.kvr_fast_encode_collect(out, BigInt(total), bodies, nf, crcs, err, err.length)) !== 0
  ) {
    // the frames the GPU left to the CPU still go there
    rejectGpu(
      new Error(`CUDA fast encode failed collecting its output: ${errText(err)}`),
      (f) => res[f * EO.words + EO.status] !== 0,
    );
  }
  items.forEach(({ i }, f) => {
    const e = f * EO.words;
    const status = res[e + EO.status];
    if (status !== 0) return toCpu(i, STATUS[status] ?? `status ${status}`);
    if (results[i]) return; // rejected with the collect's failure
    const bodyAt = res[e + EO.bodyAt], bodyLen = res[e + EO.bodyLen];
    const start = writePrefix(out, bodyAt, bodyLen, frames[i].shape, crcs[f]);
    info[i] = { backend: "cuda" };
    results[i] = { status: "fulfilled", value: out.subarray(start, bodyAt + bodyLen) };
  });
  timing.assembleMs = performance.now() - t1;
  runCpu();
  Object.assign(timing, {
    h2dMs: tm[TM.h2dMs],
    kernelMs: tm[TM.kernelMs],
    d2hMs: tm[TM.d2hMs],
    callMs: tm[TM.totalMs],
    h2dBytes: tm[TM.h2dBytes],
    d2hBytes: tm[TM.d2hBytes],
    subBatches: tm[TM.batches],
  });
  return { results, frames: info, timing };
}
