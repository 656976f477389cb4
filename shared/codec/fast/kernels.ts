/**
 * The fast format's inner loops, one row group (`BLOCK` tokens × every channel) per call. They
 * are small functions over typed arrays with int32 arithmetic only, so the JIT compiles each
 * whole instead of entering a large function's loops on-stack, which measured 3–5x slower.
 * @module
 */
import { BLOCK, Q_LIMIT } from "./layout.ts";

/** Adding and subtracting 1.5·2^52 rounds a double below 2^51 to an integer (ties to even).
 * `Math.round` measured 5x slower here: V8 may call out for it instead of one instruction. */
const ROUND = 6755399441055744;
/** Marks a value the quantizer cannot hold; no valid quantized value reaches it. */
const EXCEPTION = 0x7fffffff;

/**
 * Prequantizes rows `[r0, r0 + len)` of `x` (`[rows, cols]`) into `q`, laid out block by block
 * (`q[(b0 + c) · BLOCK + j]`); reads run along rows, which measured 5x faster than down columns.
 * Values off the quantizer's range (NaN and ±Inf included), and values `check` rejects after
 * rounding to the output dtype, are marked and their index goes to `exc` from `excN`; returns
 * the new exception count.
 */
export function quantizeGroup(
  x: Float32Array,
  r0: number,
  len: number,
  cols: number,
  inv: number,
  q: Int32Array,
  b0: number,
  exc: Int32Array,
  excN: number,
  check: ((q: number, i: number) => boolean) | null,
): number {
  for (let j = 0; j < len; j++) {
    let i = (r0 + j) * cols;
    for (let c = 0, qi = b0 * BLOCK + j; c < cols; c++, i++, qi += BLOCK) {
      const y = Math.fround(x[i] * inv); // fp32 product, as a GPU computes it
      if (y < Q_LIMIT && y > -Q_LIMIT) {
        const r = (y + ROUND) - ROUND;
        if (check === null || check(r, i)) {
          q[qi] = r;
          continue;
        }
      }
      q[qi] = EXCEPTION;
      exc[excN++] = i;
    }
  }
  return excN;
}

/**
 * Turns blocks `[b0, b0 + nb)` of quantized values (each `len` long) into zigzagged residuals in
 * place, and gives each block its width (`w1`), the width without its largest code (`w2`), and
 * that code's slot. An exception's placeholder is the residual 0.
 */
export function residualBlocks(
  z: Int32Array,
  b0: number,
  nb: number,
  len: number,
  delta: boolean,
  w1: Uint8Array,
  w2: Uint8Array,
  slot: Uint8Array,
): void {
  for (let b = b0; b < b0 + nb; b++) {
    const zb = b * BLOCK;
    let prev = 0, or = 0;
    for (let j = 0; j < len; j++) {
      let v = z[zb + j];
      if (v === EXCEPTION) v = delta ? prev : 0;
      const e = delta ? (v - prev) | 0 : v;
      prev = v;
      const code = (e << 1) ^ (e >> 31);
      z[zb + j] = code;
      or |= code;
    }
    const w = 32 - Math.clz32(or);
    w1[b] = w;
    w2[b] = w;
    slot[b] = 0;
    if (w < 2) continue;
    // a second look, only at this block: is the top bit set by one code alone?
    let tops = 0, rest = 0, top = 0;
    const t = w - 1;
    for (let j = 0; j < len; j++) { // branch-free: the codes are noise in their low bits
      const code = z[zb + j];
      const hit = code >>> t; // 1 for a code of the full width
      tops += hit;
      top += (j - top) & -hit;
      rest |= code & (hit - 1);
    }
    if (tops === 1) {
      w2[b] = 32 - Math.clz32(rest);
      slot[b] = top;
    }
  }
}

/** Packs `len` codes of block `b` at `w` bits into `words` from `o`; returns the next word. */
export function packBlock(
  z: Int32Array,
  zb: number,
  len: number,
  w: number,
  words: Int32Array,
  o: number,
): number {
  let acc = 0, nb = 0;
  for (let j = 0; j < len; j++) {
    const v = z[zb + j];
    acc |= v << nb;
    nb += w;
    if (nb >= 32) {
      words[o++] = acc;
      nb -= 32;
      acc = nb > 0 ? v >>> (w - nb) : 0;
    }
  }
  if (nb > 0) words[o++] = acc;
  return o;
}

/**
 * Decodes row group `[r0, r0 + len)` into the quantized integers `q32` (`[rows, cols]`): block
 * `b0 + c` has width `widths[b0 + c] & 0x3f`, its outlier (slot `slot[b]`, or -1) code `big[b]`,
 * and its words from `o`. Returns the word after the group. (The WebAssembly kernels are the fast
 * path; this is the reference and the fallback.)
 */
export function decodeGroupQ(
  w32: Int32Array,
  o: number,
  widths: Uint8Array,
  slot: Int8Array,
  big: Int32Array,
  b0: number,
  r0: number,
  len: number,
  cols: number,
  delta: boolean,
  q32: Int32Array,
): number {
  for (let c = 0; c < cols; c++) {
    const b = b0 + c;
    const w = widths[b] & 0x3f;
    const mask = (1 << w) - 1;
    let prev = 0, bit = 0;
    for (let j = 0, i = r0 * cols + c; j < len; j++, i += cols) {
      const k = o + (bit >>> 5), sh = bit & 31;
      let code = w32[k] >>> sh;
      if (sh + w > 32) code |= w32[k + 1] << (32 - sh);
      code &= mask;
      bit += w;
      if (j === slot[b]) code = big[b];
      const e = (code >> 1) ^ -(code & 1);
      const q = delta ? (prev + e) | 0 : e;
      prev = q;
      q32[i] = q;
    }
    o += (bit + 31) >>> 5;
  }
  return o;
}
