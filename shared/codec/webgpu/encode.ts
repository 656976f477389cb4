/**
 * GPU encoder for kvsort/sz with the qfirst predictor, writing the CPU codec's container
 * byte for byte in the same layout (pipeline.ts `szEncode`). Where each stage runs:
 *
 * | stage | where | why |
 * |---|---|---|
 * | finite min/max (rel bound, bin range) | GPU `stats` | one pass over all values |
 * | bound, bin range, exact thresholds (tables.ts) | CPU | O(bins), needs f64 |
 * | shared-index sort | GPU `sort` | a workgroup per k rows |
 * | quantize, symbols, output bits, exceptions, histogram | GPU `quantize` | per value, independent |
 * | Huffman lengths and canonical codes | CPU | ≤ 65536 symbols, serial tree build |
 * | Huffman bitstream | GPU `huffCount/huffScan/huffWrite` | per value after a prefix sum |
 * | stage headers, exception bits, crc32 digest, zstd | CPU | small, or a library call (node:zlib) |
 *
 * The quantizer's decisions equal the CPU's for every value (tables.ts), and the sort's
 * keys are the CPU's double column sums emulated with integers (sum64.ts), so the stream
 * is the CPU's byte for byte on any conforming GPU. Frames the GPU path does not cover (other
 * predictors or codecs, empty, rows over 1024 values, more bins than a table, too many
 * exceptions, buffers over the device's limits) are encoded by the CPU codec.
 * @module
 */
import { ByteWriter } from "../bytes.ts";
import { boundOptions, encode as cpuEncode, indexShareOption } from "../codec.ts";
import { digestOf, writeHeader } from "../container.ts";
import { firstBoundViolation } from "../assemble.ts";
import { huffmanTable, tableCodes, writeHuffmanTable } from "../entropy/huffman.ts";
import { saveLossless } from "../lossless/zstd.ts";
import { savePredictor } from "../predict/mod.ts";
import { LinearQuantizer, saveQuantizer } from "../quantize/linear.ts";
import { chooseK } from "../sort/auto_k.ts";
import { saveSort } from "../sort/shared_index.ts";
import { checkTensor, type Tensor, toFloat32 } from "../../dtype/mod.ts";
import type { EncodeOptions } from "../types.ts";
import { GpuCall, type GpuContext, type GpuTiming, type Profiler } from "./gpu.ts";
import { keyValue, quantTables } from "./tables.ts";

const PARAMS_TAG = 0x43; // 'C', as pipeline.ts
const DTYPE_CODE = { f32: 0, f16: 1, bf16: 2 } as const;
/** Widest row the GPU sort handles (workgroup memory). */
export const MAX_GPU_SORT_COLS = 1024;

/** Which backend produced a stream, and the GPU time when it was the GPU. */
export interface GpuRunInfo {
  backend: "webgpu" | "cpu";
  /** Why the CPU codec ran instead (undefined when the GPU did). */
  fallback?: string;
  timing?: GpuTiming;
  /** Exceptions stored (values kept exactly). */
  exceptions?: number;
}

/** Options of one GPU call. */
export interface GpuRunOptions {
  /** Record pass times with timestamp queries when the device has them (default false). */
  timestamps?: boolean;
  /** Re-check the bound on the CPU with the CPU codec's own check (default false; the GPU decides exactly). */
  verify?: boolean;
}

function cpu(t: Tensor, opts: EncodeOptions, why: string): { bytes: Uint8Array; info: GpuRunInfo } {
  return { bytes: cpuEncode(t, opts), info: { backend: "cpu", fallback: why } };
}

/** Submits `enc` with copies of `parts` and returns their bytes: `GpuContext.readBack`, or a batch's. */
export type ReadBack = (
  enc: GPUCommandEncoder,
  prof: Profiler,
  parts: [GPUBuffer, number][],
) => Promise<Uint8Array[]>;

/** Encodes `t` on the GPU (or the CPU where the GPU path does not apply); same options as `encode`. */
export function gpuEncode(
  ctx: GpuContext,
  t: Tensor,
  opts: EncodeOptions,
  run: GpuRunOptions = {},
): Promise<{ bytes: Uint8Array; info: GpuRunInfo }> {
  return encodeStaged(ctx, t, opts, run, (enc, prof, parts) => ctx.readBack(enc, prof, parts));
}

/**
 * The encoder with its three GPU round trips (min/max; histogram; output bits, exceptions,
 * permutations, bitstream) going through `readBack`, so that a batch (batch.ts) can
 * gather every frame's round trip into one submission.
 */
export async function encodeStaged(
  ctx: GpuContext,
  t: Tensor,
  opts: EncodeOptions,
  run: GpuRunOptions,
  readBack: ReadBack,
): Promise<{ bytes: Uint8Array; info: GpuRunInfo }> {
  checkTensor(t);
  const codec = opts.codec;
  if (codec !== "kvsort" && codec !== "sz") return cpu(t, opts, `codec ${codec}`);
  const { errorBound, mode, predictor } = boundOptions(opts);
  const share = codec === "kvsort" ? indexShareOption(opts) : 0;
  if (predictor.name !== "qfirst") return cpu(t, opts, `predictor ${predictor.name}`);
  const n = t.data.length;
  const cols = t.shape.length === 0 ? 1 : t.shape[t.shape.length - 1];
  const rows = cols === 0 ? 0 : n / cols;
  if (n === 0) return cpu(t, opts, "empty frame");
  if (codec === "kvsort" && cols > MAX_GPU_SORT_COLS) return cpu(t, opts, `rows of ${cols} values`);
  const width = t.dtype === "f32" ? 4 : 2;
  // room for every value to be an exception on small frames (constant frames, eb 0); 1/8 on big ones
  const excCap = n <= 1 << 20 ? n : Math.ceil(n / 8);
  if (Math.max(4 * n, 8 * excCap) > ctx.maxBinding) {
    return cpu(t, opts, "frame over the device's buffer limit");
  }

  const dev = ctx.device;
  const call = new GpuCall(ctx, run.timestamps ?? false);
  const { prof, buffer: buf, uniform } = call;
  try {
    // ---- stats: finite min/max ------------------------------------------------------------
    const inp = buf(n * width, t.data);
    const mm = buf(8, new Uint32Array([0xffffffff, 0]));
    const dtype = DTYPE_CODE[t.dtype];
    const p0 = uniform({ n, dtype });
    let enc = dev.createCommandEncoder();
    ctx.dispatch(enc, prof, "stats", [p0, inp, mm], Math.ceil(n / 4096));
    const [mmBytes] = await readBack(enc, prof, [[mm, 8]]);
    const [minKey, maxKey] = new Uint32Array(mmBytes.buffer);
    const range = minKey <= maxKey ? { min: keyValue(minKey), max: keyValue(maxKey) } : undefined;

    // ---- CPU: bound, k, exact tables ------------------------------------------------------
    const ebAbs = mode === "abs" ? errorBound : range ? errorBound * (range.max - range.min) : 0;
    if (!Number.isFinite(ebAbs)) throw new RangeError(`error bound ${ebAbs} is not finite`);
    let k = 0;
    if (codec === "kvsort") {
      k = share === "auto"
        ? chooseK(toFloat32(t), { rows, cols, dtype: t.dtype }, { eb: ebAbs, predictor }).k
        : Math.min(share, Math.max(rows, 1));
    }
    const q = new LinearQuantizer(ebAbs, t.dtype);
    const tables = quantTables(q, t.dtype, range);
    if (!tables) return cpu(t, opts, "bin range wider than a table");
    const groups = k > 0 ? Math.ceil(rows / k) : 0;
    const nBlocks = Math.ceil(n / 4096);
    const params = uniform({
      n,
      rows,
      cols,
      k,
      dtype,
      tabSize: tables.size,
      lo: tables.lo,
      excCap,
      invF: Math.fround(q.inv),
      sortSize: k > 0 ? 2 ** Math.ceil(Math.log2(Math.max(cols, 1))) : 0,
      nBlocks,
    });

    // ---- GPU: sort, quantize ----------------------------------------------------------------
    const perms = buf(groups * cols * 4);
    const tab = buf(tables.words.byteLength, tables.words);
    const syms = buf(Math.ceil(n / 2) * 4);
    const outb = buf(width === 4 ? 4 * n : Math.ceil(n / 2) * 4);
    const hist = buf(65537 * 4);
    const exc = buf(8 * excCap);
    enc = dev.createCommandEncoder();
    if (k > 0) ctx.dispatch(enc, prof, "sort", [params, inp, perms], groups);
    ctx.dispatch(
      enc,
      prof,
      "quantize",
      [params, inp, perms, tab, syms, outb, hist, exc],
      Math.ceil(n / 4096),
    );
    const [histBytes] = await readBack(enc, prof, [[hist, 65537 * 4]]);
    const freqAll = new Uint32Array(histBytes.buffer);
    const excCount = freqAll[65536];
    if (excCount > excCap) return cpu(t, opts, `${excCount} exceptions`);

    // ---- CPU: Huffman table from the histogram ----------------------------------------------
    let lo = 0, hi = 65535;
    while (freqAll[lo] === 0) lo++;
    while (freqAll[hi] === 0) hi--;
    const table = huffmanTable(freqAll.subarray(lo, hi + 1), lo);
    const { present, lens, bits } = table;

    // ---- GPU: bitstream -----------------------------------------------------------------------
    enc = dev.createCommandEncoder();
    const streamBytes = Math.ceil(bits / 8);
    let stream: GPUBuffer | undefined;
    if (bits > 0) {
      const codes = tableCodes(table);
      const ct = new Uint32Array(65536);
      present.forEach((s, i) => ct[s + lo] = (lens[s] << 24) | codes[i]);
      const ctBuf = buf(ct.byteLength, ct);
      const blk = buf(nBlocks * 4);
      stream = buf(Math.ceil(bits / 32) * 4);
      ctx.dispatch(enc, prof, "huffCount", [params, syms, ctBuf, blk], nBlocks);
      ctx.dispatch(enc, prof, "huffScan", [params, blk], 1);
      ctx.dispatch(enc, prof, "huffWrite", [params, syms, ctBuf, blk, stream], nBlocks);
    }
    const parts: [GPUBuffer, number][] = [[outb, n * width], [exc, 8 * excCount], [perms, groups * cols * 4]];
    if (stream) parts.push([stream, streamBytes]);
    const [outBytes, excBytes, permBytes, streamOut] = await readBack(enc, prof, parts);
    const timing = await prof.finish();

    // ---- CPU: assemble the stream -------------------------------------------------------------
    // exceptions in the order the CPU meets them: by sorted position
    const pairs = new Uint32Array(excBytes.buffer);
    const pos = new Uint32Array(excCount);
    for (let i = 0; i < excCount; i++) pos[i] = pairs[2 * i];
    pos.sort();
    const perm32 = new Uint32Array(permBytes.buffer);
    const excIdx = new Int32Array(Math.max(excCount, 1));
    for (let e = 0; e < excCount; e++) {
      const p = pos[e], i = Math.floor(p / cols), j = p - i * cols;
      excIdx[e] = k > 0 ? i * cols + perm32[Math.floor(i / k) * cols + j] : p;
    }
    q.excIdx = excIdx;
    q.excCount = excCount;
    const inBits = t.dtype === "f32"
      ? new Uint32Array(t.data.buffer, t.data.byteOffset, n)
      : t.data as Uint16Array;
    const out = t.dtype === "f32"
      ? new Float32Array(outBytes.buffer, 0, n)
      : new Uint16Array(outBytes.buffer, 0, n);
    if (run.verify) {
      const bad = firstBoundViolation(toFloat32(t), inBits, out, t.dtype, ebAbs);
      if (bad >= 0) throw new Error(`GPU codec bug: value ${bad} breaks the error bound ${ebAbs}`);
    }
    const grid = { rows, cols, k, perms: Uint16Array.from(perm32) };
    const w = new ByteWriter(64 + excCount * width + streamBytes + groups * cols * 2);
    w.u8(PARAMS_TAG);
    w.u8(mode === "rel" ? 1 : 0);
    w.f64(errorBound);
    saveSort(grid, w);
    savePredictor(predictor, w);
    saveQuantizer(q, inBits, w);
    // the entropy stage as huffman.ts writes it: table, bit length, bitstream
    writeHuffmanTable(table, w);
    if (streamOut) w.bytes(streamOut);
    const body = w.finish();
    const h = writeHeader({ codec, dtype: t.dtype, shape: t.shape, digest: digestOf(out) }, body.length);
    saveLossless(body, opts.lossless === "none" ? "none" : "auto", opts.zstdLevel ?? 1, h);
    return { bytes: h.finish(), info: { backend: "webgpu", timing, exceptions: excCount } };
  } finally {
    call.release();
  }
}
