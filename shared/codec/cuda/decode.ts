/**
 * Many fast streams decoded on CUDA in one library call (./fast_decode.cu), into new memory
 * (`decodeMany`: one ordinary buffer that the returned tensors view, filled through pinned
 * staging) or into the caller's own outputs (`decodeManyInto`: page-locked once each, the values
 * go there by DMA on every later call; a decode service reuses them from its pool).
 *
 * | step | where |
 * |---|---|
 * | container header, body header and section sizes, exception indices | host, before any kernel (../webgpu/fast/decode.ts `parse`) |
 * | bodies into pinned staging and the crc32 of each (host threads, in the library); a body that is not its digest is never decoded | host, before any kernel |
 * | bodies up; width bytes, scans, totals against the header; then only frames that pass: outliers, codes, `f32(q) · step`; exceptions | GPU, sub-batches on one stream (upload and kernels of one, then the values of the one before) while the host stages the next |
 * | each frame's checks, then only the values of frames that passed (DMA into page-locked outputs, else pinned pieces copied out by host threads) | GPU → host |
 *
 * Any stream whose checks fail goes through the CPU decoder, which throws its own
 * `CorruptStreamError`; streams the GPU path does not take (other codecs or dtypes, zstd-packed
 * bodies, subnormal steps, codes past 2^23) are decoded by the CPU decoder: every stream gives
 * the CPU decoder's values, bit for bit, and its errors. A stream that fails leaves its output
 * as it was.
 * @module
 */
import { decode as cpuDecode } from "../codec.ts";
import type { DecodeLimits, Tensor } from "../types.ts";
import { parse, type Parsed, ToCpu } from "../webgpu/fast/decode.ts";
import { type CudaLibrary, DI, errBuf, errText, TM } from "./library.ts";
import { type CudaFrameInfo, type CudaTiming, emptyTiming } from "./encode.ts";
import { outputFor, splitCalls } from "./decode_plan.ts";
import type { HostRegistry } from "./pinned.ts";

export interface CudaDecodeResult {
  results: PromiseSettledResult<Tensor>[];
  frames: CudaFrameInfo[];
  timing: CudaTiming;
  /** Host ms reading and checking the streams before the library call (their crc32s are in the call). */
  parseMs: number;
}

/** Options of a decode call. */
export interface CudaDecodeRunOptions {
  /** f32 output bytes per pipelined sub-batch (default 128 MiB). */
  subBatchBytes?: number;
}

/** The caller's outputs of `decodeManyInto`: stream i's values go to the head of `outs[i]`. */
export interface DecodeTargets {
  outs: Float32Array[];
  /** Page-locks each output's buffer once (kept while the buffer lives). */
  registry: HostRegistry;
}

/**
 * Decodes `streams`, each settling on its own (the CPU decoder's values and errors): into new
 * memory, or with `into` into the head of `into.outs[i]` (the tensors view those; an output too
 * short or a stream that does not decode to f32 is that stream's error). The outputs must not
 * overlap one another or the streams, nor be read or written until the promise settles.
 */
export async function cudaFastDecodeMany(
  lib: CudaLibrary,
  streams: Uint8Array[],
  limits: DecodeLimits = {},
  into?: DecodeTargets,
  run: CudaDecodeRunOptions = {},
): Promise<CudaDecodeResult> {
  const subBatchBytes = run.subBatchBytes ?? 128 * 2 ** 20;
  if (!Number.isSafeInteger(subBatchBytes) || subBatchBytes <= 0) {
    throw new RangeError(`CUDA decode: subBatchBytes must be a positive integer, got ${subBatchBytes}`);
  }
  if (into && into.outs.length !== streams.length) {
    throw new TypeError(`decodeManyInto: ${streams.length} streams but ${into.outs.length} outputs`);
  }
  const results: PromiseSettledResult<Tensor>[] = new Array(streams.length);
  const info: CudaFrameInfo[] = new Array(streams.length);
  const cpu: number[] = [];
  const toCpu = (i: number, why: string) => {
    info[i] = { backend: "cpu", fallback: why };
    cpu.push(i);
  };
  const settle = (i: number, value: () => Tensor) => {
    try {
      results[i] = { status: "fulfilled", value: value() };
    } catch (reason) {
      results[i] = { status: "rejected", reason };
    }
  };
  const runCpu = () => {
    for (const i of cpu.splice(0)) {
      settle(i, () => into ? cpuInto(streams[i], limits, into.outs[i], i) : cpuDecode(streams[i], limits));
    }
  };
  const t0 = performance.now();
  const items: Parsed[] = [];
  streams.forEach((s, i) => {
    try {
      const p = parse(s, i, limits, false);
      // the library's sizes and output indices are u32 (a limit of 2^32 elements or more lets one in)
      if (p.n >= 2 ** 32) throw new ToCpu("frame of 2^32 values or more");
      if (into) {
        try {
          outputFor(into.outs[i], p.n, i);
        } catch (reason) {
          info[i] = { backend: "cpu", fallback: "output" };
          results[i] = { status: "rejected", reason };
          return;
        }
      }
      items.push(p);
    } catch (err) {
      if (err instanceof ToCpu) toCpu(i, err.why);
      else {
        info[i] = { backend: "cpu", fallback: "corrupt" };
        results[i] = { status: "rejected", reason: err };
      }
    }
  });
  const timing = emptyTiming();
  const parseMs = performance.now() - t0;
  if (items.length === 0) {
    runCpu();
    return { results, frames: info, timing, parseMs };
  }

  for (const [g, end] of splitCalls(items.map((p) => p.n))) {
    const group = items.slice(g, end);
    const r0 = performance.now();
    const outs = into
      ? group.map((p) => outputFor(into.outs[p.i], p.n, p.i))
      : freshOutputs(group.map((p) => p.n));
    // the previous group's call has ended: nothing of ours is in flight
    // outputs the caller keeps for reuse (a pool): page-locked on their first call
    const direct = into ? into.registry.forCall(outs, true) : outs.map(() => false);
    timing.registerMs += performance.now() - r0;
    const call = decodeCall(lib, group, outs, direct, subBatchBytes);
    runCpu(); // CPU frames while the GPU works
    const { status, tm } = await call;
    for (const [f, p] of group.entries()) {
      if (status[f] !== 0) {
        toCpu(p.i, status[f] & 4 ? "digest" : status[f] & 1 ? "corrupt" : "codes past 2^23");
        continue;
      }
      info[p.i] = { backend: "cuda" };
      results[p.i] = { status: "fulfilled", value: { dtype: "f32", shape: p.shape, data: outs[f] } };
    }
    timing.h2dMs += tm[TM.h2dMs], timing.kernelMs += tm[TM.kernelMs], timing.d2hMs += tm[TM.d2hMs];
    timing.callMs += tm[TM.totalMs], timing.h2dBytes += tm[TM.h2dBytes], timing.d2hBytes += tm[TM.d2hBytes];
    timing.subBatches += tm[TM.batches], timing.directBytes += tm[TM.directBytes];
  }
  runCpu();
  return { results, frames: info, timing, parseMs };
}

/** Views of one new buffer, one per frame, one after another. */
function freshOutputs(ns: number[]): Float32Array[] {
  const buffer = new ArrayBuffer(4 * ns.reduce((a, b) => a + b, 0));
  let at = 0;
  return ns.map((n) => {
    const v = new Float32Array(buffer, 4 * at, n);
    at += n;
    return v;
  });
}

/** The CPU decoder's tensor copied into the caller's output (which it leaves alone on an error). */
function cpuInto(stream: Uint8Array, limits: DecodeLimits, out: Float32Array, i: number): Tensor {
  const t = cpuDecode(stream, limits);
  if (t.dtype !== "f32") throw new TypeError(`decodeManyInto: stream ${i} decodes to ${t.dtype}, not f32`);
  const data = outputFor(out, t.data.length, i);
  data.set(t.data as Float32Array);
  return { dtype: "f32", shape: t.shape, data };
}

/** One library call over checked streams, each into its output: a status each. */
async function decodeCall(
  lib: CudaLibrary,
  items: Parsed[],
  outs: Float32Array[],
  direct: boolean[],
  subBatchBytes: number,
): Promise<{ status: Uint32Array; tm: Float64Array }> {
  const nf = items.length;
  const table = new Float64Array(nf * DI.words);
  const addr = (v: ArrayBufferView) => Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(v)));
  let nExc = 0;
  for (const [f, p] of items.entries()) {
    const e = f * DI.words;
    table[e + DI.ptr] = addr(p.body);
    table[e + DI.len] = p.body.length;
    table[e + DI.rows] = p.rows;
    table[e + DI.cols] = p.cols;
    table[e + DI.step] = p.step;
    table[e + DI.delta] = p.delta ? 1 : 0;
    table[e + DI.outlierBits] = p.outlierBits;
    table[e + DI.outliersAt] = p.outliersAt;
    table[e + DI.payloadAt] = p.payloadAt;
    table[e + DI.outliers] = p.outliers;
    table[e + DI.payloadWords] = p.payloadWords;
    table[e + DI.digest] = p.digest;
    table[e + DI.out] = addr(outs[f]);
    table[e + DI.direct] = direct[f] ? 1 : 0;
    nExc += p.exceptions;
  }
  // exceptions: (index into the call's values, raw bits), checked ascending and in range by `parse`
  const exc = new Uint32Array(Math.max(2, 2 * nExc));
  for (let f = 0, k = 0, base = 0; f < nf; base += items[f].n, f++) {
    const p = items[f];
    if (p.exceptions === 0) continue;
    const dv = new DataView(p.body.buffer, p.body.byteOffset, p.body.byteLength);
    for (let j = 0; j < p.exceptions; j++, k++) {
      exc[2 * k] = base + dv.getUint32(p.excAt + 4 * j, true);
      exc[2 * k + 1] = dv.getUint32(p.excAt + 4 * (p.exceptions + j), true);
    }
  }
  const status = new Uint32Array(nf);
  const tm = new Float64Array(TM.words);
  const err = errBuf();
  const rc = await lib.symbols.kvr_fast_decode(
    table,
    nf,
    exc,
    BigInt(nExc),
    BigInt(subBatchBytes),
    status,
    tm,
    err,
    err.length,
  );
  if (rc !== 0) throw new Error(`CUDA fast decode failed: ${errText(err)}`);
  return { status, tm };
}
