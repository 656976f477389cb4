/**
 * Exact quantizer tables for the GPU (built on the CPU, O(bins)). WGSL has no f64, yet the
 * CPU quantizer decides in double precision: the bin is `Math.round(v · inv)` and a value
 * is kept when `|value(bin) − v| ≤ eb`, both evaluated in doubles. Both decisions are
 * monotone in `v`, so each is a threshold on the fp32 input: this module finds those
 * thresholds with the CPU's own arithmetic and hands them to the GPU as *ordered keys*
 * (fp32 bits mapped so that unsigned order is numeric order). The GPU then decides with
 * integer comparisons only — no float rounding, no subnormal flushing — and reaches the
 * CPU's decision for every input, so the error bound holds by construction.
 *
 * Layout of `words` (u32), for bins `lo .. lo + size − 1`:
 * ```
 * E[0..size]   E[t] = smallest key with Math.round(v·inv) ≥ lo + t   (bin edges)
 * L[0..size)   smallest key with value[t] − v ≤ eb                   (bound, low side)
 * H[0..size)   largest key with value[t] − v ≥ −eb                  (bound, high side)
 * V[0..size)   value[t] as storage bits of the dtype (fp16/bf16 pattern or fp32 bits)
 * ```
 * @module
 */
import type { Dtype } from "../../dtype/mod.ts";
import { type BinTable, binTable, QMAX } from "../quantize/bins.ts";
import type { LinearQuantizer } from "../quantize/linear.ts";

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Ordered key of fp32 bits: unsigned order of keys is the numeric order of values. */
export function orderedKey(bits: number): number {
  return (bits & 0x80000000 ? ~bits : bits | 0x80000000) >>> 0;
}

/** The fp32 value of an ordered key. */
export function keyValue(key: number): number {
  u32[0] = key & 0x80000000 ? key & 0x7fffffff : ~key >>> 0;
  return f32[0];
}

function keyOf(v: number): number {
  f32[0] = v;
  return orderedKey(u32[0]);
}

/** Keys of the most negative and most positive finite fp32 values. */
export const KEY_MIN = orderedKey(0xff7fffff);
export const KEY_MAX = orderedKey(0x7f7fffff);

/** Smallest finite key for which the monotone `pred` holds (KEY_MAX + 1 when none), searched from `guess`. */
function firstTrue(pred: (key: number) => boolean, guess: number): number {
  let c = Number.isFinite(guess) ? keyOf(guess) : guess > 0 ? KEY_MAX : KEY_MIN;
  c = Math.min(KEY_MAX, Math.max(KEY_MIN, c));
  let lo: number, hi: number; // pred(lo) false (or lo = KEY_MIN - 1), pred(hi) true (or KEY_MAX + 1)
  let step = 1;
  if (pred(c)) {
    hi = c;
    lo = c - 1;
    while (lo >= KEY_MIN && pred(lo)) {
      hi = lo;
      lo = Math.max(KEY_MIN - 1, hi - step);
      step *= 2;
    }
  } else {
    lo = c;
    hi = c + 1;
    while (hi <= KEY_MAX && !pred(hi)) {
      lo = hi;
      hi = Math.min(KEY_MAX + 1, lo + step);
      step *= 2;
    }
  }
  while (hi - lo > 1) {
    const m = Math.floor((lo + hi) / 2);
    if (pred(m)) hi = m;
    else lo = m;
  }
  return hi;
}

/** The GPU quantizer's tables for one frame. */
export interface QuantTables {
  lo: number;
  size: number;
  words: Uint32Array;
  /** The CPU's bin table (values and storage bits) the thresholds were derived from. */
  bins: BinTable;
}

/**
 * Tables for a frame whose finite values span `[minV, maxV]` (undefined when no value is
 * finite), or undefined when the frame needs more bins than the CPU builds a table for
 * (then the CPU codec's per-value path applies and the caller falls back to it).
 */
export function quantTables(
  q: LinearQuantizer,
  dtype: Dtype,
  range: { min: number; max: number } | undefined,
): QuantTables | undefined {
  // the same bin range as frameBins() in predict/qfirst.ts
  let a = 0, b = 0;
  if (range) {
    a = Math.max(-QMAX, Math.round(range.min * q.inv));
    b = Math.min(QMAX, Math.round(range.max * q.inv));
    if (a > b) a = b = 0;
  }
  const bins = binTable(q.twoEb, dtype, a + 0, b + 0);
  if (!bins) return undefined;
  const { lo, size, value, bits } = bins;
  const words = new Uint32Array(4 * size + 1);
  const inv = q.inv, eb = q.eb;
  for (let t = 0; t <= size; t++) {
    const qv = lo + t;
    const guess = inv > 0 ? (qv - 0.5) / inv : -Infinity;
    words[t] = firstTrue((key) => Math.round(keyValue(key) * inv) >= qv, guess);
  }
  for (let t = 0; t < size; t++) {
    const val = value[t];
    words[size + 1 + t] = firstTrue((key) => val - keyValue(key) <= eb, val - eb);
    words[2 * size + 1 + t] = firstTrue((key) => val - keyValue(key) < -eb, val + eb) - 1;
    words[3 * size + 1 + t] = bits[t];
  }
  return { lo, size, words, bins };
}
