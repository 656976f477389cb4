/**
 * The per-frame choice of the adaptive KVSort encoder: one pass over a sample of the frame
 * (a few evenly spaced blocks of rows) codes it with every candidate — no sort, the shared
 * sort at each candidate k, the token-axis predictor, and the cross-channel predictor when
 * the frame's coefficients are known — and estimates each one's bits as the Huffman cost of
 * its symbols plus exceptions plus the sort indices. The cheapest wins; the stream records the
 * choice in its sort and predict stages, so the decoder needs nothing else.
 * @module
 */
import type { Dtype } from "../../dtype/mod.ts";
import { huffmanLengths } from "../entropy/huffman.ts";
import { LinearQuantizer } from "../quantize/linear.ts";
import { indexBits, sortGrid } from "../sort/shared_index.ts";
import { LEHMER_MAX_COLS, lehmerBytes } from "../sort/lehmer.ts";
import { linearEncode, type LinearSpec } from "./linear.ts";
import { PREDICTORS } from "./mod.ts";
import { frameBins } from "./qfirst.ts";

/** What a frame is coded with. */
export type FrameChoice = { kind: "sort"; k: number } | { kind: "linear"; spec: LinearSpec };

/** The choice and every candidate's estimate (bits per value on the sample). */
export interface ChoiceResult {
  choice: FrameChoice;
  estimates: { label: string; bitsPerValue: number }[];
}

/** Rows per sampled block; the first row of a block only gives context and is not counted. */
const BLOCK = 33;
const BLOCKS = 4;

/** Picks how to code a `rows` × `cols` frame at absolute bound `eb`. */
export function chooseFrameCoding(
  x: Float32Array,
  shape: { rows: number; cols: number; dtype: Dtype },
  opts: { eb: number; ks: number[]; linear: LinearSpec[] },
): ChoiceResult {
  const { rows, cols, dtype } = shape;
  const whole = rows <= BLOCK * BLOCKS;
  const blocks = whole ? 1 : BLOCKS;
  const blockRows = whole ? rows : BLOCK;
  const sampleRows = blocks * blockRows;
  let sample = x;
  if (!whole) {
    sample = new Float32Array(sampleRows * cols);
    for (let b = 0; b < blocks; b++) {
      const from = Math.floor(((rows - BLOCK) * b) / (BLOCKS - 1)) * cols;
      sample.set(x.subarray(from, from + BLOCK * cols), b * BLOCK * cols);
    }
  }
  // rows whose symbols count: all of them for a whole frame, else all but each block's first
  const counted = (row: number) => whole || row % BLOCK !== 0;
  const countedRows = whole ? rows : blocks * (BLOCK - 1);
  const n = sampleRows * cols;
  const syms = new Uint16Array(n);
  const width = dtype === "f32" ? 32 : 16;
  const estimates: { label: string; bitsPerValue: number }[] = [];
  let best: FrameChoice = { kind: "sort", k: opts.ks[0] ?? 0 }, bestBits = Infinity;
  const consider = (label: string, choice: FrameChoice, bits: number) => {
    const bpv = bits / Math.max(countedRows * cols, 1);
    estimates.push({ label, bitsPerValue: bpv });
    if (bpv < bestBits) [best, bestBits] = [choice, bpv];
  };
  for (const k of opts.ks) {
    const q = new LinearQuantizer(opts.eb, dtype);
    const grid = sortGrid(sample, sampleRows, cols, k);
    PREDICTORS.qfirst.encode(sample, grid, q, syms, new Float32Array(n));
    const perPerm = cols >= 2 && cols <= LEHMER_MAX_COLS ? 8 * lehmerBytes(cols) : cols * indexBits(cols);
    const index = k === 0 ? 0 : (countedRows / k) * perPerm;
    consider(
      `sort k=${k}`,
      { kind: "sort", k },
      symbolBits(syms, cols, counted) + q.excCount * width + index,
    );
  }
  if (opts.linear.length) {
    const q0 = new LinearQuantizer(opts.eb, dtype);
    const tab = frameBins(sample, q0);
    const bits = dtype === "f32" ? new Uint32Array(n) : new Uint16Array(n);
    for (const spec of opts.linear) {
      if (!tab) break;
      const q = new LinearQuantizer(opts.eb, dtype);
      linearEncode(sample, { rows: sampleRows, cols }, spec, q, tab, { syms, inBits: bits, outBits: bits });
      consider(spec.kind, { kind: "linear", spec }, symbolBits(syms, cols, counted) + q.excCount * width);
    }
  }
  return { choice: best, estimates };
}

/** Huffman cost of the symbols of the counted rows. */
function symbolBits(syms: Uint16Array, cols: number, counted: (row: number) => boolean): number {
  let lo = 65535, hi = 0;
  for (let i = 0; i < syms.length; i++) {
    const s = syms[i];
    if (s < lo) lo = s;
    if (s > hi) hi = s;
  }
  if (hi < lo) return 0;
  const freq = new Uint32Array(hi - lo + 1);
  for (let i = 0; i < syms.length; i++) if (counted((i / cols) | 0)) freq[syms[i] - lo]++;
  const lens = huffmanLengths(freq);
  let bits = 0;
  for (let s = 0; s < freq.length; s++) if (freq[s] > 0) bits += freq[s] * Math.max(lens[s], 1);
  return bits;
}
