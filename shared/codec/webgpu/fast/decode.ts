/**
 * Many fast streams decoded on the GPU in one submission per batch, straight into one f32
 * buffer that comes back in one read-back (the decoded KV goes to the host: the model runtime
 * runs on onnxruntime's own WebGPU device, which cannot share buffers with this one).
 *
 * | step | where |
 * |---|---|
 * | container header, lossless section, crc32 of the body, body header and section sizes, exception indices | host (all validated, as ../../fast/decode.ts) |
 * | bodies up, one buffer; exceptions as (output index, bits) pairs | host → GPU |
 * | width bytes → words and outlier flags, checked; scan; totals per frame | GPU `decWidths`, `decTotals` |
 * | outliers, codes, `f32(q) · step` into the output; exceptions' bits | GPU `decBlocks`, `decExc` |
 * | the values and each frame's checks | GPU → host |
 *
 * Any stream whose checks fail (on the host or on the GPU) goes through the CPU decoder, which
 * throws its own `CorruptStreamError`, so errors are the CPU decoder's. Streams of other codecs
 * or dtypes, zstd-packed bodies, subnormal steps, and bodies whose codes reach |q| >= 2^23 (the
 * encoder never writes them) are decoded by the CPU decoder: every stream gives the CPU
 * decoder's values, bit for bit. Tensors of a batch are views into one buffer.
 * @module
 */
import { crc32 } from "node:zlib";
import { ByteReader } from "../../bytes.ts";
import { decode as cpuDecode } from "../../codec.ts";
import { DEFAULT_MAX_ELEMENTS, readHeader } from "../../container.ts";
import { CorruptStreamError } from "../../errors.ts";
import { loadLossless, LOSSLESS_TAG } from "../../lossless/zstd.ts";
import { align4, blockCount, FAST_TAG, HEADER_BYTES, MAX_WIDTH, SLOT_BITS } from "../../fast/layout.ts";
import type { DecodeLimits, Tensor } from "../../types.ts";
import { type FastGpu, type FastTiming, Run } from "./context.ts";
import { DF, DS } from "./decode_kernels.ts";
import type { FastRunOptions } from "./encode.ts";
import type { FastBatchInfo, FastFrameInfo } from "./batches.ts";
import { batchCap } from "./encode.ts";
import { f32Bits } from "./params.ts";
import { recordScan } from "./scan.ts";
import { cutBatches, runBatches } from "./batches.ts";
import { FRAME_WORDS as W } from "./wgsl.ts";

/** A stream checked on the host and ready for the GPU. */
export interface Parsed {
  i: number;
  shape: number[];
  rows: number;
  cols: number;
  n: number;
  blocks: number;
  body: Uint8Array;
  /** The crc32 the container promises for the body. */
  digest: number;
  delta: boolean;
  step: number;
  outliers: number;
  outlierBits: number;
  exceptions: number;
  payloadWords: number;
  outliersAt: number;
  payloadAt: number;
  excAt: number;
}

export interface FastDecodeResult {
  results: PromiseSettledResult<Tensor>[];
  frames: FastFrameInfo[];
  batches: FastBatchInfo[];
  /** Host ms reading and checking the streams before upload (crc32 included). */
  parseMs: number;
}

/** Thrown inside `parse` for a stream the CPU decoder should decode (it throws its own error). */
export class ToCpu {
  constructor(readonly why: string) {}
}

/**
 * Host-side reading and checks of one stream; `ToCpu` for what the GPU does not decode. With
 * `checkDigest` false the body's crc32 is left to the caller (`digest` is what it must equal).
 */
export function parse(bytes: Uint8Array, i: number, limits: DecodeLimits, checkDigest = true): Parsed {
  if (!(bytes instanceof Uint8Array)) throw new TypeError("decode() needs a Uint8Array");
  const r = new ByteReader(bytes);
  const h = readHeader(r, limits.maxElements ?? DEFAULT_MAX_ELEMENTS);
  if (h.codec !== "fast") throw new ToCpu(`codec ${h.codec}`);
  if (h.dtype !== "f32") throw new ToCpu(`${h.dtype} output`);
  const n = h.shape.reduce((a, b) => a * b, 1);
  if (n === 0) throw new ToCpu("empty frame");
  const cols = h.shape.length === 0 ? 1 : h.shape[h.shape.length - 1];
  const rows = n / cols;
  if (bytes[r.pos] === LOSSLESS_TAG && bytes[r.pos + 1] !== 0) throw new ToCpu("zstd-packed body");
  const bodyAt = r.pos;
  const body = loadLossless(r, 16 * n + 2 ** 20);
  if (r.pos !== bytes.length) throw new ToCpu("stray bytes");
  if (checkDigest && (crc32(body) >>> 0) !== h.digest) {
    throw new CorruptStreamError("digest of the stream body does not match", bodyAt);
  }
  const corrupt = () => new ToCpu("corrupt");
  if (body.length < HEADER_BYTES || body[0] !== FAST_TAG || body[1] > 1 || body[2] > 1) throw corrupt();
  const dv = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const eb = dv.getFloat64(12, true), step = dv.getFloat64(20, true);
  const outliers = dv.getUint32(28, true), outlierBits = body[32];
  const exceptions = dv.getUint32(36, true), payloadWords = dv.getUint32(40, true);
  if (!(step > 0) || !Number.isFinite(step) || Math.fround(step) !== step) throw corrupt();
  if (!(eb >= 0) || !Number.isFinite(eb) || outlierBits > MAX_WIDTH || exceptions > n) throw corrupt();
  const { blocks } = blockCount(rows, cols);
  const outliersAt = HEADER_BYTES + align4(blocks);
  const payloadAt = outliersAt + 4 * Math.ceil((outliers * (SLOT_BITS + outlierBits)) / 32);
  const excAt = payloadAt + 4 * payloadWords;
  if (excAt + 8 * exceptions !== body.length) throw corrupt();
  if (step < 2 ** -126) throw new ToCpu("subnormal step");
  let last = -1;
  for (let k = 0; k < exceptions; k++) {
    const idx = dv.getUint32(excAt + 4 * k, true);
    if (idx <= last || idx >= n) throw corrupt();
    last = idx;
  }
  return {
    i,
    shape: h.shape,
    rows,
    cols,
    n,
    blocks,
    body,
    digest: h.digest,
    delta: body[1] === 1,
    step,
    outliers,
    outlierBits,
    exceptions,
    payloadWords,
    outliersAt,
    payloadAt,
    excAt,
  };
}

/** Decodes `streams`, each settling on its own (the CPU decoder's values and errors). */
export async function fastDecodeMany(
  gpu: FastGpu,
  streams: Uint8Array[],
  limits: DecodeLimits = {},
  run: FastRunOptions = {},
): Promise<FastDecodeResult> {
  const results: PromiseSettledResult<Tensor>[] = new Array(streams.length);
  const info: FastFrameInfo[] = new Array(streams.length);
  const batches: FastBatchInfo[] = [];
  const cpuQueue: number[] = [];
  const toCpu = (i: number, why: string) => {
    info[i] = { backend: "cpu", fallback: why };
    cpuQueue.push(i);
  };
  const runCpu = () => {
    for (const i of cpuQueue.splice(0)) {
      try {
        results[i] = { status: "fulfilled", value: cpuDecode(streams[i], limits) };
      } catch (reason) {
        results[i] = { status: "rejected", reason };
      }
    }
  };
  const cap = batchCap(gpu, run);
  const items: Parsed[] = [];
  const t0 = performance.now();
  streams.forEach((s, i) => {
    try {
      const p = parse(s, i, limits);
      if (Math.max(4 * p.n + 4 * W, p.body.length, 8 * (p.blocks + 1)) > cap) {
        toCpu(i, "frame over the batch size");
      } else items.push(p);
    } catch (err) {
      if (err instanceof ToCpu) toCpu(i, err.why);
      else {
        info[i] = { backend: "cpu", fallback: "corrupt" };
        results[i] = { status: "rejected", reason: err };
      }
    }
  });

  const parseMs = performance.now() - t0;
  const cut = cutBatches(
    items,
    (p) => [p.n, p.body.length, p.blocks, 1],
    // the read-back holds the values and 16 words of checks a frame
    ([v, s, b, f]) => Math.max(4 * v + 4 * W * f, s, 8 * (b + 1)),
    cap,
  );
  batches.push(
    ...await runBatches(cut, { results, info, toCpu, runCpu }, {
      inflight: run.inflight ?? 2,
      values: (p) => p.n,
      runBatch: (batch) => decodeBatch(gpu, batch, run.timestamps ?? false),
    }),
  );
  return { results, frames: info, batches, parseMs };
}

async function decodeBatch(
  gpu: FastGpu,
  items: Parsed[],
  timestamps: boolean,
): Promise<{ out: (Tensor | string)[]; timing: FastTiming }> {
  const nf = items.length;
  let values = 0, srcBytes = 0, blocks = 0;
  for (const p of items) values += p.n, srcBytes += p.body.length, blocks += p.blocks;
  const df = new Uint32Array(nf * W);
  let outOff = 0, blockStart = 0, srcAt = 0, nExc = 0;
  for (const [f, p] of items.entries()) {
    const e = f * W, word = srcAt / 4;
    df[e + DF.srcWord] = word;
    df[e + DF.rows] = p.rows;
    df[e + DF.cols] = p.cols;
    df[e + DF.blockStart] = blockStart;
    df[e + DF.blocks] = p.blocks;
    df[e + DF.outOff] = outOff;
    df[e + DF.step] = f32Bits(p.step);
    df[e + DF.delta] = p.delta ? 1 : 0;
    df[e + DF.outlierBits] = p.outlierBits;
    df[e + DF.payloadWord] = word + p.payloadAt / 4;
    df[e + DF.outlierWord] = word + p.outliersAt / 4;
    outOff += p.n, blockStart += p.blocks, srcAt += p.body.length, nExc += p.exceptions;
  }
  // exceptions: (output index, raw bits), already checked ascending and in range
  const exc = new Uint32Array(2 * nExc);
  let k = 0;
  for (const [f, p] of items.entries()) {
    if (p.exceptions === 0) continue;
    const dv = new DataView(p.body.buffer, p.body.byteOffset, p.body.byteLength);
    const base = df[f * W + DF.outOff];
    for (let j = 0; j < p.exceptions; j++, k++) {
      exc[2 * k] = base + dv.getUint32(p.excAt + 4 * j, true);
      exc[2 * k + 1] = dv.getUint32(p.excAt + 4 * (p.exceptions + j), true);
    }
  }
  const run = new Run(gpu, timestamps);
  try {
    const src = run.buffer(srcBytes);
    for (const [f, p] of items.entries()) run.write(src, 4 * df[f * W + DF.srcWord], p.body);
    run.phase("up");
    const dfBuf = run.upload(df);
    const ds = run.buffer(4 * nf * W);
    const scan = run.buffer(8 * (blocks + 1));
    const out = run.buffer(4 * values);
    const u = run.uniform(blocks, nf, 0, 0);
    const wgs = Math.ceil(blocks / 256);
    await run.settle();
    run.begin();
    run.dispatch("decWidths", [u, dfBuf, src, scan, ds], wgs);
    recordScan(run, scan, blocks + 1);
    run.dispatch("decTotals", [u, dfBuf, scan, ds], Math.ceil(nf / 64));
    run.dispatch("decBlocks", [u, dfBuf, src, scan, ds, out], wgs);
    if (nExc > 0) {
      run.dispatch("decExc", [run.uniform(0, 0, 0, nExc), run.upload(exc), out], Math.ceil(nExc / 256));
    }
    const { bytes, at } = await run.finish([[ds, 0, 4 * nf * W], [out, 0, 4 * values]]);
    const st = new Uint32Array(bytes.buffer, 0, nf * W);
    const res = items.map((p, f): Tensor | string => {
      const e = f * W;
      if (
        st[e + DS.badWidth] !== 0 || st[e + DS.badSlot] !== 0 ||
        st[e + DS.flagged] !== p.outliers || st[e + DS.payloadWords] !== p.payloadWords
      ) return "corrupt";
      if (st[e + DS.bigQ] !== 0) return "codes past 2^23";
      const data = new Float32Array(bytes.buffer, at[1] + 4 * df[e + DF.outOff], p.n);
      return { dtype: "f32", shape: p.shape, data };
    });
    return { out: res, timing: await run.timing() };
  } finally {
    run.release();
  }
}
