/**
 * Many frames through the fast encoder on the GPU, in three submissions per batch: the values
 * go up once, and only the finite ranges, the frames' sizes and then exactly the compressed
 * bytes come back. Streams are byte for byte `encode(t, { codec: "fast", ... })` of
 * ../../codec.ts (every decision is the CPU's; encode_kernels.ts, params.ts).
 *
 * | step | where |
 * |---|---|
 * | upload the f32 frames into one buffer; frame table | host → GPU |
 * | 1. finite min/max per frame (`minmax`) | GPU, read back: 2 words a frame |
 * | bound, step, inverse, which frames the GPU keeps | host (double arithmetic, params.ts) |
 * | 2. quantize, residuals, widths, predictor, outlier decision, scan of words and outliers, totals | GPU, read back: 16 words a frame |
 * | stream layout: each body's offset (4-aligned), room for its headers | host |
 * | 3. pack widths, payload, outliers; exceptions (only with any) | GPU, read back: the streams' bytes |
 * | body header, crc32 of the body, container header, in place | host |
 *
 * Frames the GPU path does not take (other codecs, f16/bf16 input, empty frames, `eb` 0, the
 * per-value-check case of `quantStep`, steps under 2^-124, frames over the batch size) are
 * encoded by the CPU encoder while the GPU works, so their streams and errors are the CPU's.
 * The streams of a batch are views into one buffer (one copy out of the staging buffer).
 * @module
 */
import { encode as cpuEncode } from "../../codec.ts";
import { HEADER_BYTES } from "../../fast/layout.ts";
import { checkTensor, type Tensor } from "../../../dtype/mod.ts";
import type { EncodeOptions } from "../../types.ts";
import { prefixBytes, writeFastHeader, writePrefix } from "./assemble.ts";
import { type FastGpu, type FastTiming, Run } from "./context.ts";
import { EF, FS, LT, PRED_AUTO, PRED_DELTA, PRED_NONE, PRED_SKIP } from "./encode_kernels.ts";
import {
  f32Bits,
  type FastOptions,
  fastOptions,
  frameParams,
  sampledValues,
  sampleStride,
} from "./params.ts";
import { recordScan } from "./scan.ts";
import { cutBatches, type FastBatchInfo, type FastFrameInfo, runBatches } from "./batches.ts";

export type { FastBatchInfo, FastFrameInfo } from "./batches.ts";
import { FRAME_WORDS as W } from "./wgsl.ts";

/** Options of a batch call. */
export interface FastRunOptions {
  /** Time the compute passes with timestamp queries when the device has them (default false). */
  timestamps?: boolean;
  /** Bytes of f32 input per batch at most (default: the device's binding limit, at most 1 GiB). */
  maxBatchBytes?: number;
  /** Batches on the device at once (default 2: one uploads while the other runs). */
  inflight?: number;
}

/** Which backend made a frame's stream. */
export interface FastEncodeResult {
  results: PromiseSettledResult<Uint8Array>[];
  frames: FastFrameInfo[];
  batches: FastBatchInfo[];
}

const GIB = 2 ** 30;

/** Default and device cap of a batch's bytes (one binding holds the f32 input, scans 8 bytes a block). */
export function batchCap(gpu: FastGpu, run: FastRunOptions): number {
  return Math.min(run.maxBatchBytes ?? GIB, gpu.maxBinding);
}

interface Item {
  i: number;
  t: Tensor;
  o: FastOptions;
  rows: number;
  cols: number;
  blocks: number;
}

/** Encodes `frames` (one options object each, or one for all), each settling on its own. */
export async function fastEncodeMany(
  gpu: FastGpu,
  frames: Tensor[],
  opts: EncodeOptions | EncodeOptions[],
  run: FastRunOptions = {},
): Promise<FastEncodeResult> {
  if (Array.isArray(opts) && opts.length !== frames.length) {
    throw new TypeError(`${frames.length} frames but ${opts.length} option sets`);
  }
  const optsOf = (i: number) => Array.isArray(opts) ? opts[i] : opts;
  const results: PromiseSettledResult<Uint8Array>[] = new Array(frames.length);
  const info: FastFrameInfo[] = new Array(frames.length);
  const batches: FastBatchInfo[] = [];
  const cpuQueue: number[] = [];
  const toCpu = (i: number, why: string) => {
    info[i] = { backend: "cpu", fallback: why };
    cpuQueue.push(i);
  };
  const runCpu = () => {
    for (const i of cpuQueue.splice(0)) {
      try {
        results[i] = { status: "fulfilled", value: cpuEncode(frames[i], optsOf(i)) };
      } catch (reason) {
        results[i] = { status: "rejected", reason };
      }
    }
  };

  const cap = batchCap(gpu, run);
  const items: Item[] = [];
  frames.forEach((t, i) => {
    try {
      checkTensor(t);
      const o = optsOf(i);
      if (o.codec !== "fast") return toCpu(i, `codec ${o.codec}`);
      const fo = fastOptions(o);
      if (t.dtype !== "f32") return toCpu(i, `${t.dtype} input`);
      const n = t.data.length;
      if (n === 0) return toCpu(i, "empty frame");
      const cols = t.shape.length === 0 ? 1 : t.shape[t.shape.length - 1];
      const rows = n / cols;
      const blocks = Math.ceil(rows / 32) * cols;
      if (Math.max(4 * n, 8 * (blocks + 1), 8 * (rows + 1)) > cap) {
        return toCpu(i, "frame over the batch size");
      }
      if (sampledValues(rows, cols) * 25 >= 2 ** 32) return toCpu(i, "predictor sample over 2^32 bits");
      items.push({ i, t, o: fo, rows, cols, blocks });
    } catch (reason) {
      info[i] = { backend: "cpu", fallback: "bad frame or options" };
      results[i] = { status: "rejected", reason };
    }
  });

  // batches of consecutive frames under the cap; the CPU frames run while the first batches are on the GPU
  const cut = cutBatches(
    items,
    (it) => [it.t.data.length, it.blocks, it.rows],
    ([v, b, r]) => Math.max(4 * v, 8 * (b + 1), 8 * (r + 1)),
    cap,
  );
  batches.push(
    ...await runBatches(cut, { results, info, toCpu, runCpu }, {
      inflight: run.inflight ?? 2,
      values: (it) => it.t.data.length,
      runBatch: (batch) => encodeBatch(gpu, batch, run.timestamps ?? false),
    }),
  );
  return { results, frames: info, batches };
}

const align4 = (n: number) => (n + 3) & ~3;

/**
 * One batch on the GPU: per frame its stream (a view into the batch's read-back buffer) or why
 * the CPU must encode it.
 */
async function encodeBatch(
  gpu: FastGpu,
  items: Item[],
  timestamps: boolean,
): Promise<{ out: (Uint8Array | string)[]; timing: FastTiming }> {
  const nf = items.length;
  const ef = new Uint32Array(nf * W);
  let values = 0, blocks = 0, rows = 0;
  items.forEach((it, f) => {
    const e = f * W;
    ef[e + EF.inOff] = values;
    ef[e + EF.rows] = it.rows;
    ef[e + EF.cols] = it.cols;
    ef[e + EF.blockStart] = blocks;
    ef[e + EF.blocks] = it.blocks;
    ef[e + EF.rowStart] = rows;
    ef[e + EF.stride] = sampleStride(it.rows);
    values += it.t.data.length, blocks += it.blocks, rows += it.rows;
  });
  const run = new Run(gpu, timestamps);
  try {
    // ---- 1: finite range per frame --------------------------------------------------------
    const x = run.buffer(4 * values);
    items.forEach((it, f) => run.write(x, 4 * ef[f * W + EF.inOff], it.t.data));
    run.phase("up");
    const efBuf = run.upload(ef);
    const fs0 = new Uint32Array(nf * W);
    for (let f = 0; f < nf; f++) fs0[f * W + FS.minKey] = 0xffffffff;
    const fsBuf = run.upload(fs0);
    const u = run.uniform(blocks, nf, rows, 0);
    const wgs = Math.ceil(blocks / 256);
    await run.settle();
    run.begin();
    run.dispatch("minmax", [u, efBuf, x, fsBuf], wgs);
    const r1 = await run.finish([[fsBuf, 0, 4 * nf * W]]);
    const fs1 = new Uint32Array(r1.bytes.buffer);

    // ---- host: bound, step, inverse, predictor option -------------------------------------
    const out: (Uint8Array | string)[] = new Array(nf);
    const params = items.map((it, f) => {
      const e = f * W;
      const p = frameParams(it.o, fs1[e + FS.minKey], fs1[e + FS.maxKey]);
      if (typeof p === "string") {
        out[f] = p;
        ef[e + EF.pred] = PRED_SKIP;
        return undefined;
      }
      ef[e + EF.inv] = f32Bits(p.inv);
      ef[e + EF.pred] = it.o.predictor === "auto"
        ? PRED_AUTO
        : it.o.predictor === "delta"
        ? PRED_DELTA
        : PRED_NONE;
      return p;
    });
    if (params.every((p) => p === undefined)) return { out, timing: await run.timing() };
    run.write(efBuf, 0, ef);

    // ---- 2: blocks, decisions, offsets ----------------------------------------------------
    const meta = run.buffer(8 * blocks);
    const sel = run.buffer(4 * blocks);
    const scan = run.buffer(8 * (blocks + 1));
    run.begin();
    run.dispatch("blockStats", [u, efBuf, x, fsBuf, meta], wgs);
    run.dispatch("decide0", [u, efBuf, meta, fsBuf, sel], wgs);
    run.dispatch("decide1", [u, efBuf, fsBuf, sel, scan], wgs);
    recordScan(run, scan, blocks + 1);
    run.dispatch("frameTotals", [u, efBuf, scan, fsBuf], Math.ceil(nf / 64));
    const r2 = await run.finish([[fsBuf, 0, 4 * nf * W]]);
    const fs = new Uint32Array(r2.bytes.buffer);

    // ---- host: layout of the streams ------------------------------------------------------
    const lt = new Uint32Array(nf * W);
    const place: { bodyAt: number; bodyLen: number }[] = new Array(nf);
    let pos = 0, outWords = 0, rank = 0, anyExc = false;
    items.forEach((it, f) => {
      const e = f * W;
      lt[e + LT.outWordStart] = outWords;
      if (params[f] === undefined) return;
      const ob = fs[e + FS.outlierBits], outliers = fs[e + FS.outliers];
      const nExc = fs[e + FS.exceptions], payloadWords = fs[e + FS.payloadWords];
      const widthBytes = align4(it.blocks);
      const oWords = Math.ceil((outliers * (5 + ob)) / 32);
      const bodyLen = HEADER_BYTES + widthBytes + 4 * oWords + 4 * payloadWords + 8 * nExc;
      const bodyAt = align4(pos + prefixBytes(it.t.shape, bodyLen));
      const bodyWord = bodyAt / 4;
      lt[e + LT.bodyWord] = bodyWord;
      lt[e + LT.outlierWord] = bodyWord + HEADER_BYTES / 4 + widthBytes / 4;
      lt[e + LT.payloadWord] = lt[e + LT.outlierWord] + oWords;
      lt[e + LT.excWord] = lt[e + LT.payloadWord] + payloadWords;
      lt[e + LT.outlierWords] = oWords;
      lt[e + LT.outliers] = outliers;
      lt[e + LT.outlierBits] = ob;
      lt[e + LT.exceptions] = nExc;
      lt[e + LT.rankBase] = rank;
      place[f] = { bodyAt, bodyLen };
      pos = bodyAt + bodyLen;
      outWords += oWords;
      rank += outliers;
      anyExc ||= nExc > 0;
    });
    if (pos > gpu.maxBinding) {
      items.forEach((_, f) => params[f] && (out[f] = "streams over the device's buffer limit"));
      return { out, timing: await run.timing() };
    }

    // ---- 3: packing -----------------------------------------------------------------------
    const outBuf = run.buffer(pos);
    const ent = run.buffer(4 * Math.max(rank, 1));
    const ltBuf = run.upload(lt);
    run.begin();
    run.dispatch("pack", [u, efBuf, x, fsBuf, sel, scan, ltBuf, outBuf, ent], wgs);
    run.dispatch(
      "outlierWords",
      [run.uniform(0, nf, 0, outWords), ltBuf, ent, outBuf],
      Math.ceil(outWords / 256),
    );
    if (anyExc) {
      const rs = run.buffer(8 * (rows + 1));
      run.dispatch("excRows", [u, efBuf, x, fsBuf, rs], Math.ceil(rows / 64));
      recordScan(run, rs, rows + 1);
      run.dispatch("excWrite", [u, efBuf, x, fsBuf, rs, ltBuf, outBuf], Math.ceil(rows / 64));
    }
    const { bytes } = await run.finish([[outBuf, 0, align4(pos)]]);

    // ---- host: headers and digests, in place ----------------------------------------------
    run.phase("layout");
    items.forEach((it, f) => {
      const p = params[f];
      if (p === undefined) return;
      const e = f * W;
      const { bodyAt, bodyLen } = place[f];
      writeFastHeader(bytes, bodyAt, {
        predictor: fs[e + FS.predictor] === 1 ? "delta" : "none",
        mode: it.o.mode,
        errorBound: it.o.errorBound,
        eb: p.eb,
        step: p.step,
        outliers: fs[e + FS.outliers],
        outlierBits: fs[e + FS.outlierBits],
        exceptions: fs[e + FS.exceptions],
        payloadWords: fs[e + FS.payloadWords],
      });
      const start = writePrefix(bytes, bodyAt, bodyLen, it.t.shape);
      out[f] = bytes.subarray(start, bodyAt + bodyLen);
    });
    run.phase("assemble");
    return { out, timing: await run.timing() };
  } finally {
    run.release();
  }
}
