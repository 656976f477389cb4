/**
 * Many fast streams decoded on CUDA in one library call (./fast_decode.cu) into one ordinary
 * buffer that the returned tensors view: the values come back through pinned staging piece by
 * piece, copied out by host threads while the next piece is on the bus.
 *
 * | step | where |
 * |---|---|
 * | container header, crc32 of the body, body header and section sizes, exception indices | host, before any kernel (../webgpu/fast/decode.ts `parse`) |
 * | bodies up in one copy; width bytes, scans, totals against the header; then only frames that pass: outliers, codes, `f32(q) · step`; exceptions | GPU |
 * | the values (DMA into pinned staging, host threads copy out) and each frame's checks | GPU → host |
 *
 * Any stream whose checks fail goes through the CPU decoder, which throws its own
 * `CorruptStreamError`; streams the GPU path does not take (other codecs or dtypes, zstd-packed
 * bodies, subnormal steps, codes past 2^23) are decoded by the CPU decoder: every stream gives
 * the CPU decoder's values, bit for bit, and its errors.
 * @module
 */
import { decode as cpuDecode } from "../codec.ts";
import type { DecodeLimits, Tensor } from "../types.ts";
import { parse, type Parsed, ToCpu } from "../webgpu/fast/decode.ts";
import { type CudaLibrary, DI, errBuf, errText, TM } from "./library.ts";
import { type CudaFrameInfo, type CudaTiming, emptyTiming } from "./encode.ts";

export interface CudaDecodeResult {
  results: PromiseSettledResult<Tensor>[];
  frames: CudaFrameInfo[];
  timing: CudaTiming;
  /** Host ms reading and checking the streams (crc32 included). */
  parseMs: number;
}

/** Decodes `streams`, each settling on its own (the CPU decoder's values and errors). */
export async function cudaFastDecodeMany(
  lib: CudaLibrary,
  streams: Uint8Array[],
  limits: DecodeLimits = {},
): Promise<CudaDecodeResult> {
  const results: PromiseSettledResult<Tensor>[] = new Array(streams.length);
  const info: CudaFrameInfo[] = new Array(streams.length);
  const cpu: number[] = [];
  const toCpu = (i: number, why: string) => {
    info[i] = { backend: "cpu", fallback: why };
    cpu.push(i);
  };
  const runCpu = () => {
    for (const i of cpu.splice(0)) {
      try {
        results[i] = { status: "fulfilled", value: cpuDecode(streams[i], limits) };
      } catch (reason) {
        results[i] = { status: "rejected", reason };
      }
    }
  };
  const t0 = performance.now();
  const items: Parsed[] = [];
  streams.forEach((s, i) => {
    try {
      items.push(parse(s, i, limits));
    } catch (err) {
      if (err instanceof ToCpu) toCpu(i, err.why);
      else {
        info[i] = { backend: "cpu", fallback: "corrupt" };
        results[i] = { status: "rejected", reason: err };
      }
    }
  });
  const parseMs = performance.now() - t0;
  const timing = emptyTiming();
  if (items.length === 0) {
    runCpu();
    return { results, frames: info, timing, parseMs };
  }

  // calls of at most 2^30 values (4 GiB of f32): the library's output indices are u32
  for (let g = 0; g < items.length;) {
    let values = 0, end = g;
    while (end < items.length && (end === g || values + items[end].n <= MAX_CALL_VALUES)) {
      values += items[end++].n;
    }
    const group = items.slice(g, end);
    g = end;
    const call = decodeCall(lib, group, values);
    runCpu(); // CPU frames while the GPU works
    const { buffer, status, tm } = await call;
    let at = 0;
    for (const [f, p] of group.entries()) {
      const view = new Float32Array(buffer, 4 * at, p.n);
      at += p.n;
      if (status[f] !== 0) {
        toCpu(p.i, status[f] & 1 ? "corrupt" : "codes past 2^23");
        continue;
      }
      info[p.i] = { backend: "cuda" };
      results[p.i] = { status: "fulfilled", value: { dtype: "f32", shape: p.shape, data: view } };
    }
    timing.h2dMs += tm[TM.h2dMs], timing.kernelMs += tm[TM.kernelMs], timing.d2hMs += tm[TM.d2hMs];
    timing.callMs += tm[TM.totalMs], timing.h2dBytes += tm[TM.h2dBytes], timing.d2hBytes += tm[TM.d2hBytes];
    timing.subBatches += tm[TM.batches];
  }
  runCpu();
  return { results, frames: info, timing, parseMs };
}

/** Values of one library call at most (its output indices are u32). */
const MAX_CALL_VALUES = 2 ** 30;

/** One library call over checked streams: their values one after another, and a status each. */
async function decodeCall(
  lib: CudaLibrary,
  items: Parsed[],
  values: number,
): Promise<{ buffer: ArrayBuffer; status: Uint32Array; tm: Float64Array }> {
  const nf = items.length;
  const table = new Float64Array(nf * DI.words);
  let nExc = 0;
  for (const [f, p] of items.entries()) {
    const e = f * DI.words;
    table[e + DI.ptr] = Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(p.body)));
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
    nExc += p.exceptions;
  }
  // exceptions: (output index, raw bits), checked ascending and in range by `parse`
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
  const buffer = new ArrayBuffer(4 * values);
  const status = new Uint32Array(nf);
  const tm = new Float64Array(TM.words);
  const err = errBuf();
  const rc = await lib.symbols.kvr_fast_decode(
    table,
    nf,
    exc,
    BigInt(nExc),
    new Uint8Array(buffer),
    status,
    tm,
    err,
    err.length,
  );
  if (rc !== 0) throw new Error(`CUDA fast decode failed: ${errText(err)}`);
  return { buffer, status, tm };
}
