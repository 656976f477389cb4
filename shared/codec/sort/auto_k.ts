/**
 * Chooses the index-sharing `k` from a sample of the frame, after the ratio-quality model of
 * Jin et al. (ICDE 2022) that SZ3's auto-tuning uses: for each candidate k, run sort,
 * predict and quantize on a few evenly spaced groups of k rows, estimate the bit rate as the
 * Huffman cost of the sampled symbols plus exceptions plus the amortised index bits, and
 * raise k until the estimate gets worse.
 * @module
 */
import type { Dtype } from "../../dtype/mod.ts";
import { huffmanLengths } from "../entropy/huffman.ts";
import type { Predictor } from "../predict/mod.ts";
import { LinearQuantizer } from "../quantize/linear.ts";
import { indexBits, sortGrid } from "./shared_index.ts";

/** Candidate values of k, tried in order. */
export const AUTO_K_CANDIDATES = [1, 2, 4, 8, 16, 32, 64, 128];

/** Estimated bits per value for each tried k, and the choice. */
export interface AutoKResult {
  k: number;
  estimates: { k: number; bitsPerValue: number }[];
}

/** Picks k for a frame of `rows` × `cols` values (flat, row-major). */
export function chooseK(
  x: Float32Array,
  shape: { rows: number; cols: number; dtype: Dtype },
  opts: { eb: number; predictor: Predictor },
): AutoKResult {
  const { rows, cols, dtype } = shape;
  const estimates: { k: number; bitsPerValue: number }[] = [];
  let best = 1, bestBits = Infinity;
  for (const k of AUTO_K_CANDIDATES) {
    if (k > rows && k > 1) break;
    const groups = Math.max(1, Math.min(4, Math.floor(rows / (8 * k))));
    const sampleRows = Math.min(rows, groups * k);
    const sample = new Float32Array(sampleRows * cols);
    for (let g = 0; g < groups; g++) {
      const from = Math.floor(((rows - k) * g) / Math.max(groups - 1, 1)) * cols;
      const n = Math.min(k, sampleRows - g * k) * cols;
      sample.set(x.subarray(from, from + n), g * k * cols);
    }
    const grid = sortGrid(sample, sampleRows, cols, k);
    const q = new LinearQuantizer(opts.eb, dtype);
    const syms = new Uint16Array(sample.length);
    opts.predictor.encode(sample, grid, q, syms, new Float32Array(sample.length));
    // histogram over the symbols present only (the same code lengths as over all 65536)
    let lo = 65535, hi = 0;
    for (let i = 0; i < syms.length; i++) {
      const s = syms[i];
      if (s < lo) lo = s;
      if (s > hi) hi = s;
    }
    let bits = 0;
    if (hi >= lo) {
      const freq = new Uint32Array(hi - lo + 1);
      for (let i = 0; i < syms.length; i++) freq[syms[i] - lo]++;
      const lens = huffmanLengths(freq);
      for (let s = 0; s < freq.length; s++) if (freq[s] > 0) bits += freq[s] * lens[s];
    }
    bits += q.excCount * (dtype === "f32" ? 32 : 16) + grid.perms.length * indexBits(cols);
    const bpv = bits / Math.max(sample.length, 1);
    estimates.push({ k, bitsPerValue: bpv });
    if (bpv > bestBits) break;
    best = k;
    bestBits = bpv;
  }
  return { k: best, estimates };
}
