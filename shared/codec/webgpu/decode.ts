/**
 * GPU decoder for kvsort/sz streams with the qfirst predictor (the CPU encoder's default),
 * with the CPU decoder's validation and errors. Where each stage runs:
 *
 * | stage | where | why |
 * |---|---|---|
 * | header, zstd, sort indices, exception bits (validated) | CPU | parsing hostile bytes; node:zlib |
 * | Huffman decode | CPU | the format has no sync points: one serial bitstream |
 * | exception bins, each row's starting bin | CPU | O(exceptions + rows) |
 * | bins: prefix sums along each row, ±2^30 check | GPU `decRows` | a segmented scan per row |
 * | bins → storage bits through the bin table, unsort | GPU `decMap`/`decRows` | per value |
 * | exceptions' exact bits, crc32 digest check | CPU | few values; node:zlib crc32 |
 *
 * Streams of other codecs or predictors, and bin ranges too wide for a table, are decoded
 * by the CPU decoder, so every stream the CPU reads, this reads to the same values.
 * @module
 */
import { ByteReader } from "../bytes.ts";
import { decode as cpuDecode } from "../codec.ts";
import { DEFAULT_MAX_ELEMENTS, digestOf, readHeader } from "../container.ts";
import { CorruptStreamError } from "../errors.ts";
import { huffmanDecode } from "../entropy/huffman.ts";
import { loadLossless } from "../lossless/zstd.ts";
import { loadPredictor } from "../predict/mod.ts";
import { binTable, exceptionBin, QMAX } from "../quantize/bins.ts";
import { type LinearQuantizer, loadQuantizer, RADIUS } from "../quantize/linear.ts";
import { type Grid, loadSort } from "../sort/shared_index.ts";
import type { DecodeLimits, Tensor } from "../types.ts";
import type { Dtype } from "../../dtype/mod.ts";
import { GpuCall, type GpuContext } from "./gpu.ts";
import type { GpuRunInfo, GpuRunOptions } from "./encode.ts";

const PARAMS_TAG = 0x43;
const DTYPE_CODE = { f32: 0, f16: 1, bf16: 2 } as const;

/** A parsed qfirst stream, ready for the GPU. */
interface Parsed {
  dtype: Dtype;
  shape: number[];
  digest: number;
  rows: number;
  cols: number;
  grid: Grid;
  q: LinearQuantizer;
  excBits: Uint32Array | Uint16Array;
  syms: Uint16Array;
  /** Sorted positions of the exceptions, their original indices and their chain bins. */
  excPos: Uint32Array;
  excIdx: Int32Array;
  excBin: Int32Array;
  /** firstPrev[i]: bin of row i−1's first sorted value (0 for row 0). */
  firstPrev: Int32Array;
}

function parse(bytes: Uint8Array, limits: DecodeLimits): Parsed | string {
  if (!(bytes instanceof Uint8Array)) throw new TypeError("decode() needs a Uint8Array");
  const r = new ByteReader(bytes);
  const h = readHeader(r, limits.maxElements ?? DEFAULT_MAX_ELEMENTS);
  if (h.codec !== "kvsort" && h.codec !== "sz") return `codec ${h.codec}`;
  const n = h.shape.reduce((a, b) => a * b, 1);
  const cols = h.shape.length === 0 ? 1 : h.shape[h.shape.length - 1];
  const rows = cols === 0 ? 0 : n / cols;
  const bodyAt = r.pos;
  const body = loadLossless(r, 16 * n + 2 ** 20);
  if (r.pos !== bytes.length) r.fail(`${bytes.length - r.pos} stray bytes after the stream`);
  const b = new ByteReader(body);
  const fail = (msg: string, at = b.pos): never => b.fail(`${msg} (body offset ${at})`, bodyAt);
  b.tag(PARAMS_TAG, "params");
  const at = b.pos;
  if (b.u8("mode") > 1) fail("unknown error-bound mode", at);
  b.f64("error bound");
  const grid = loadSort(b, rows, cols);
  const predictor = loadPredictor(b);
  const { q, excBits } = loadQuantizer(b, h.dtype, n);
  const syms = huffmanDecode(b, n);
  if (b.pos !== b.end) fail(`${b.end - b.pos} stray bytes after the entropy stage`);
  if (h.codec === "sz" && grid.k !== 0) r.fail("sz stream with a sort index", bodyAt);
  if (predictor.name !== "qfirst") return `predictor ${predictor.name}`;
  if (n === 0) return "empty frame";
  // exceptions, in the order the CPU decoder meets them
  let count = 0;
  for (let p = 0; p < n; p++) if (syms[p] === 0) count++;
  if (count > excBits.length) fail("more exceptions than stored");
  if (count < excBits.length) fail(`${excBits.length - count} stored exceptions left unused`);
  const excPos = new Uint32Array(count), excIdx = new Int32Array(count), excBin = new Int32Array(count);
  const { k, perms } = grid;
  for (let p = 0, e = 0; p < n; p++) {
    if (syms[p] !== 0) continue;
    const i = Math.floor(p / cols), j = p - i * cols;
    excPos[e] = p;
    excIdx[e] = k > 0 ? i * cols + perms[Math.floor(i / k) * cols + j] : p;
    excBin[e] = exceptionBin(q.excValues[e], q.inv);
    e++;
  }
  const firstPrev = new Int32Array(rows);
  let first = 0;
  for (let i = 0, e = 0; i < rows; i++) {
    firstPrev[i] = first;
    const p = i * cols, s = syms[p];
    if (s !== 0) first = (first + s - RADIUS) | 0;
    else {
      while (excPos[e] < p) e++;
      first = excBin[e];
    }
  }
  return {
    dtype: h.dtype,
    shape: h.shape,
    digest: h.digest,
    rows,
    cols,
    grid,
    q,
    excBits,
    syms,
    excPos,
    excIdx,
    excBin,
    firstPrev,
  };
}

/** Decodes a stream; the same results and errors as the CPU decoder's `decode`. */
export async function gpuDecode(
  ctx: GpuContext,
  bytes: Uint8Array,
  limits: DecodeLimits = {},
  run: GpuRunOptions = {},
): Promise<{ tensor: Tensor; info: GpuRunInfo }> {
  let parsed: Parsed | string;
  try {
    parsed = parse(bytes, limits);
  } catch (err) {
    if (err instanceof CorruptStreamError || err instanceof TypeError && err.message.startsWith("decode()")) {
      throw err;
    }
    throw new CorruptStreamError(`unexpected failure: ${(err as Error)?.message ?? err}`, 0);
  }
  const cpu = (why: string) => ({
    tensor: cpuDecode(bytes, limits),
    info: { backend: "cpu" as const, fallback: why },
  });
  if (typeof parsed === "string") return cpu(parsed);
  const s = parsed;
  const n = s.syms.length, width = s.dtype === "f32" ? 4 : 2;
  if (4 * n > ctx.maxBinding) return cpu("frame over the device's buffer limit");
  const dev = ctx.device;
  const call = new GpuCall(ctx, run.timestamps ?? false);
  const { prof, buffer: buf, uniform } = call;
  try {
    // ---- GPU: bins per row --------------------------------------------------------------------
    const nExc = s.excPos.length;
    const exc = new Uint32Array(2 * nExc);
    exc.set(s.excPos);
    exc.set(new Uint32Array(s.excBin.buffer), nExc);
    const params = uniform({
      n,
      rows: s.rows,
      cols: s.cols,
      k: s.grid.k,
      dtype: DTYPE_CODE[s.dtype],
      nExc,
    });
    const symBuf = buf(2 * n, s.syms);
    const permBuf = buf(4 * s.grid.perms.length, Uint32Array.from(s.grid.perms));
    const firstBuf = buf(4 * s.rows, s.firstPrev);
    const excBuf = buf(4 * exc.length, exc);
    const bins = buf(4 * n);
    const mm = buf(8, new Int32Array([0x7fffffff, -0x80000000]));
    let enc = dev.createCommandEncoder();
    ctx.dispatch(enc, prof, "decRows", [params, symBuf, permBuf, firstBuf, excBuf, bins, mm], s.rows);
    const [mmBytes] = await ctx.readBack(enc, prof, [[mm, 8]]);
    const [lo, hi] = new Int32Array(mmBytes.buffer);
    if (lo <= hi && (lo < -QMAX || hi > QMAX)) {
      throw new CorruptStreamError(`quantization bin ${lo < -QMAX ? lo : hi} out of range`, 0);
    }

    // ---- GPU: bins → storage bits ------------------------------------------------------------------
    const outBuf = buf(width === 4 ? 4 * n : 4 * Math.ceil(n / 2));
    enc = dev.createCommandEncoder();
    if (lo <= hi) {
      const tab = binTable(s.q.twoEb, s.dtype, lo, hi);
      if (!tab) return cpu("bin range wider than a table");
      const tabBuf = buf(4 * tab.size, Uint32Array.from(tab.bits));
      const p2 = uniform({ n, dtype: DTYPE_CODE[s.dtype], tabSize: tab.size, lo });
      const words = width === 4 ? n : Math.ceil(n / 2);
      ctx.dispatch(enc, prof, "decMap", [p2, bins, tabBuf, outBuf], Math.ceil(words / 256));
    }
    const [outBytes] = await ctx.readBack(enc, prof, [[outBuf, n * width]]);
    const timing = await prof.finish();

    // ---- CPU: exceptions, digest ---------------------------------------------------------------
    const data = s.dtype === "f32"
      ? new Float32Array(outBytes.buffer, 0, n)
      : new Uint16Array(outBytes.buffer, 0, n);
    const outBits = data instanceof Float32Array ? new Uint32Array(data.buffer, 0, n) : data;
    for (let e = 0; e < nExc; e++) outBits[s.excIdx[e]] = s.excBits[e];
    if (digestOf(data) !== s.digest) {
      throw new CorruptStreamError("digest of the decoded values does not match", 0);
    }
    return {
      tensor: { dtype: s.dtype, shape: s.shape, data },
      info: { backend: "webgpu", timing, exceptions: nExc },
    };
  } finally {
    call.release();
  }
}
