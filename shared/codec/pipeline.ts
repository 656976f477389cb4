/**
 * The KVSort composer (and, with k = 0, the unsorted SZ pipeline). It reads like the
 * design: sort → predict+quantize → entropy → lossless, each stage saving its own tagged
 * metadata; decoding walks the same stages back.
 * @module
 */
import { ByteReader, ByteWriter } from "./bytes.ts";
import type { Dtype } from "../dtype/mod.ts";
import { loadSort, saveSort, sortGrid } from "./sort/shared_index.ts";
import { LINEAR_PREDICTOR, loadPredictor, type Predictor, savePredictor } from "./predict/mod.ts";
import {
  linearDecode,
  linearEncode,
  type LinearSpec,
  loadLinearSpec,
  saveLinearSpec,
} from "./predict/linear.ts";
import { LinearQuantizer, loadQuantizer, saveQuantizer } from "./quantize/linear.ts";
import { huffmanDecode, huffmanEncode, type HuffmanInfo } from "./entropy/huffman.ts";
import { assemble } from "./assemble.ts";
import { groupedDecode, groupedEncode } from "./entropy/grouped.ts";
import { frameBins, qfirstDecodeBits, qfirstEncodeTable } from "./predict/qfirst.ts";
import { scratchU16, scratchU8 } from "./scratch.ts";

/** Parameters of one kvsort/sz encode, resolved by the caller. */
export interface SzParams {
  ebAbs: number;
  errorBound: number;
  mode: "abs" | "rel";
  k: number;
  predictor: Predictor;
  /** Code the unsorted frame with a linear predictor instead (`k` and `predictor` are then unused). */
  linear?: LinearSpec;
  /** Store the sort permutations as Lehmer codes (the adaptive encoder's choice). */
  lehmer?: boolean;
}

/** Frame geometry and input. */
export interface Frame {
  x: Float32Array;
  bits: Uint32Array | Uint16Array;
  dtype: Dtype;
  rows: number;
  cols: number;
}

const PARAMS_TAG = 0x43; // 'C'

/** Encodes a frame; returns the stage bytes (before lossless) and the output data. */
export function szEncode(f: Frame, p: SzParams): { body: Uint8Array; out: Float32Array | Uint16Array } {
  if (p.linear) {
    const done = linearFrameEncode(f, p, p.linear);
    if (done) return done;
    p = { ...p, linear: undefined, k: 0 };
  }
  const n = f.x.length;
  const grid = sortGrid(f.x, f.rows, f.cols, p.k);
  const q = new LinearQuantizer(p.ebAbs, f.dtype);
  const syms = scratchU16("enc.syms", n);
  let out: Float32Array | Uint16Array | undefined;
  if (p.predictor.name === "qfirst") {
    // fused path: symbols and output bits in one pass over the bin table
    // the output is only checked and digested by the caller, so it lives in scratch too
    const outBits = f.dtype === "f32"
      ? new Uint32Array(scratchU16("enc.out", 2 * n).buffer, 0, n)
      : scratchU16("enc.out", n);
    out = outBits instanceof Uint32Array ? new Float32Array(outBits.buffer, 0, n) : outBits;
    if (!qfirstEncodeTable(f.x, grid, q, syms, f.bits, outBits)) out = undefined;
  }
  if (!out) {
    const recon = new Float32Array(n);
    p.predictor.encode(f.x, grid, q, syms, recon);
    const excBits = new Uint32Array(q.excCount);
    for (let i = 0; i < q.excCount; i++) excBits[i] = f.bits[q.excIdx[i]];
    out = assemble(recon, f.dtype, q.excIdx, excBits);
  }
  const w = new ByteWriter(64 + (n >> 1), scratchU8("enc.body", 64 + (n >> 1)));
  w.u8(PARAMS_TAG);
  w.u8(p.mode === "rel" ? 1 : 0);
  w.f64(p.errorBound);
  saveSort(grid, w, { lehmer: p.lehmer });
  savePredictor(p.predictor, w);
  saveQuantizer(q, f.bits, w);
  huffmanEncode(syms, w);
  return { body: w.finish(), out };
}

/**
 * The unsorted frame through a linear predictor (`predict/linear.ts`), the stages written as
 * the sorted path writes them (the sort stage says k = 0). Undefined, having written nothing,
 * when the frame spans more bins than a table holds.
 */
function linearFrameEncode(
  f: Frame,
  p: SzParams,
  spec: LinearSpec,
): { body: Uint8Array; out: Float32Array | Uint16Array } | undefined {
  const n = f.x.length;
  const q = new LinearQuantizer(p.ebAbs, f.dtype);
  const tab = frameBins(f.x, q);
  if (!tab) return undefined;
  const syms = scratchU16("enc.syms", n);
  const outBits = f.dtype === "f32"
    ? new Uint32Array(scratchU16("enc.out", 2 * n).buffer, 0, n)
    : scratchU16("enc.out", n);
  linearEncode(f.x, f, spec, q, tab, { syms, inBits: f.bits, outBits });
  const w = new ByteWriter(64 + (n >> 1), scratchU8("enc.body", 64 + (n >> 1)));
  w.u8(PARAMS_TAG);
  w.u8(p.mode === "rel" ? 1 : 0);
  w.f64(p.errorBound);
  saveSort({ rows: f.rows, cols: f.cols, k: 0, perms: new Uint16Array(0) }, w);
  savePredictor(LINEAR_PREDICTOR, w);
  saveLinearSpec(spec, w);
  saveQuantizer(q, f.bits, w);
  groupedEncode(syms, f.rows, f.cols, w);
  const out = outBits instanceof Uint32Array ? new Float32Array(outBits.buffer, 0, n) : outBits;
  return { body: w.finish(), out };
}

/** What the stages of a decoded body held. */
export interface SzInfo {
  mode: "abs" | "rel";
  errorBound: number;
  eb: number;
  k: number;
  predictor: Predictor["name"];
  /** The linear predictor's kind and, for `cross`, its coefficient set's hash. */
  linear?: { kind: "token" | "cross"; coefficients?: string };
  exceptions: number;
  stages: Record<string, number>;
}

/** Decodes the stage bytes of a frame of `rows` × `cols`. */
export function szDecode(
  body: Uint8Array,
  dtype: Dtype,
  rows: number,
  cols: number,
  bodyOffset: number,
): { out: Float32Array | Uint16Array; info: SzInfo } {
  const r = new ByteReader(body);
  const fail = (msg: string, at = r.pos): never => r.fail(`${msg} (body offset ${at})`, bodyOffset);
  r.tag(PARAMS_TAG, "params");
  const at = r.pos;
  const mode = r.u8("mode");
  if (mode > 1) fail(`unknown error-bound mode ${mode}`, at);
  const errorBound = r.f64("error bound");
  const s0 = r.pos;
  const grid = loadSort(r, rows, cols);
  const s1 = r.pos;
  const predictor = loadPredictor(r);
  const linear = predictor === LINEAR_PREDICTOR ? loadLinearSpec(r, cols) : undefined;
  if (linear && grid.k !== 0) fail(`a linear predictor on a sorted frame (k = ${grid.k})`, s1);
  const s2 = r.pos;
  const { q, excBits } = loadQuantizer(r, dtype, rows * cols);
  const s3 = r.pos;
  const hinfo: HuffmanInfo = { tableBytes: 0, bitstreamBytes: 0, distinctSymbols: 0 };
  const symsInto = scratchU16("dec.syms", rows * cols);
  // frames in channel order (the linear predictors) may code channel groups apart
  const syms = linear
    ? groupedDecode(r, rows, cols, hinfo, symsInto)
    : huffmanDecode(r, rows * cols, hinfo, symsInto);
  if (r.pos !== r.end) fail(`${r.end - r.pos} stray bytes after the entropy stage`);
  let out: Float32Array | Uint16Array;
  if (linear) {
    out = dtype === "f32" ? new Float32Array(rows * cols) : new Uint16Array(rows * cols);
    const outBits = out instanceof Float32Array ? new Uint32Array(out.buffer) : out;
    linearDecode(syms, { rows, cols }, linear, q, excBits, outBits, r);
    if (q.excNext !== excBits.length) fail(`${excBits.length - q.excNext} stored exceptions left unused`);
  } else if (predictor.name === "qfirst") {
    out = dtype === "f32" ? new Float32Array(rows * cols) : new Uint16Array(rows * cols);
    const outBits = out instanceof Float32Array ? new Uint32Array(out.buffer) : out;
    qfirstDecodeBits(syms, grid, q, excBits, outBits, r);
    if (q.excNext !== excBits.length) fail(`${excBits.length - q.excNext} stored exceptions left unused`);
  } else {
    const recon = new Float32Array(rows * cols);
    predictor.decode(syms, grid, q, recon, r);
    if (q.excNext !== excBits.length) fail(`${excBits.length - q.excNext} stored exceptions left unused`);
    out = assemble(recon, dtype, q.excIdx, excBits);
  }
  return {
    out,
    info: {
      mode: mode === 1 ? "rel" : "abs",
      errorBound,
      eb: q.eb,
      k: grid.k,
      predictor: predictor.name,
      linear: linear &&
        (linear.kind === "cross" ? { kind: "cross", coefficients: linear.set.hash } : { kind: "token" }),
      exceptions: excBits.length,
      stages: {
        params: s0,
        sort: s1 - s0,
        predict: s2 - s1,
        quantize: s3 - s2,
        entropyTable: hinfo.tableBytes,
        entropyBits: hinfo.bitstreamBytes,
      },
    },
  };
}
