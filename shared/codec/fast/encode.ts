/**
 * The fast format's encoder (layout: ./layout.ts). Three passes over the values, each a
 * plain typed-array loop: the range, the prequantized residuals with each block's two largest
 * codes, and the bit packing. It knows nothing about the container around the body.
 * @module
 */
import type { Dtype } from "../../dtype/mod.ts";
import { f16Table32, f32ToBf16Bits, f32ToF16Bits } from "../../dtype/mod.ts";
import { scratchI32, scratchU8 } from "../scratch.ts";
import { packBlock, quantizeGroup, residualBlocks } from "./kernels.ts";
import {
  bitWidth,
  BLOCK,
  blockCount,
  blockWords,
  bodyLayout,
  FAST_TAG,
  type FastPredictor,
  HEADER_BYTES,
  OUTLIER_FLAG,
  PREDICTOR_IDS,
  Q_LIMIT,
  SLOT_BITS,
} from "./layout.ts";
import { type FastKernels, fastKernels } from "./wasm/mod.ts";

/** Adding and subtracting 1.5·2^52 rounds a double below 2^51 to an integer (see kernels.ts). */
const ROUND = 6755399441055744;

/** What the encoder reads: the values as fp32 and the input's own bits (for exceptions). */
export interface FastFrame {
  x: Float32Array; // [rows, cols]
  bits: Uint32Array | Uint16Array; // the same values in the input dtype
  dtype: Dtype;
  rows: number;
  cols: number;
}

export interface FastParams {
  errorBound: number;
  mode: "abs" | "rel";
  /** `auto` (default) picks the cheaper predictor on a sample of row groups. */
  predictor?: FastPredictor | "auto";
  /**
   * Which loops: `auto` (default) the WebAssembly kernels where they apply (fp32 values that
   * need no per-value check; faster at every frame size measured), `js` the JS loops only. Both
   * give the same bytes.
   */
  kernels?: "auto" | "js";
}

/** The encoded body and what it kept. */
export interface FastEncoded {
  body: Uint8Array;
  eb: number;
  predictor: FastPredictor;
  exceptions: number;
  outliers: number;
  /** Which loops encoded it. */
  kernels: "js" | "wasm";
}

/** Range of the finite values, and the largest magnitude among them. */
function finiteRange(x: Float32Array): { lo: number; hi: number; maxAbs: number } {
  // Math.min/max rather than compares: no branch to mispredict on noisy values (2x measured)
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  if (!Number.isFinite(hi - lo)) { // a NaN or an infinity is in there: look again, slowly
    lo = Infinity, hi = -Infinity;
    for (const v of x) if (Number.isFinite(v)) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
  }
  return rangeOf(lo, hi);
}

function rangeOf(lo: number, hi: number): { lo: number; hi: number; maxAbs: number } {
  if (!(hi >= lo)) return { lo: 0, hi: 0, maxAbs: 0 };
  return { lo, hi, maxAbs: Math.max(-lo, hi) };
}

/**
 * The quantization step (an fp32 value) and whether each value needs its own check. All of the
 * format's arithmetic is fp32 (`y = f32(x · inv)`, `q = roundEven(y)`, `x' = f32(q · step)`), so a
 * GPU computes the same codes. Without checks the bound holds by construction: with
 * `step <= 2·eb·(1 − s)`, `|x' − x| <= eb(1 − s) + eb·2^-23 + maxAbs·2^-21.6`, and
 * `s = (1 + maxAbs/eb)·2^-20` covers the rest twice over. A -0 comes back as 0, within any
 * bound; only `eb = 0` (every value checked) keeps its sign.
 */
function quantStep(eb: number, maxAbs: number, dtype: Dtype): { step: number; checkEach: boolean } {
  if (!(eb > 0)) return { step: 1, checkEach: true }; // exactness asked: only integers quantize
  const shrink = (1 + maxAbs / eb) * 2 ** -20;
  const fast = dtype === "f32" && shrink <= 2 ** -5;
  const step = Math.fround(2 * eb * (1 - (fast ? shrink : 2 ** -20)));
  // a subnormal or zero step would leave the fp32 arithmetic (and flush to zero on some GPUs);
  // an infinite one (bounds past fp32's range) could not be decoded
  if (!(step >= 2 ** -126) || !Number.isFinite(step)) return { step: 1, checkEach: true };
  return { step, checkEach: !fast };
}

/** Whether `q·step`, rounded to the output dtype, is within `eb` of `v`. */
function holds(q: number, step: number, v: number, eb: number, dtype: Dtype): boolean {
  const r = q * step;
  let out: number;
  if (dtype === "f32") out = Math.fround(r);
  else if (dtype === "f16") out = f16Table32()[f32ToF16Bits(r)];
  else {
    const u = new Uint32Array(1);
    u[0] = f32ToBf16Bits(r) << 16;
    out = new Float32Array(u.buffer)[0];
  }
  return eb === 0 ? Object.is(out, v) : Math.abs(out - v) <= eb; // exactness keeps -0 too
}

/** Residual bits of the sampled row groups under each predictor; the cheaper one wins. */
function choosePredictor(x: Float32Array, rows: number, cols: number, inv: number): FastPredictor {
  const { groups } = blockCount(rows, cols);
  const stride = Math.max(1, Math.floor(groups / 8));
  let none = 0, delta = 0;
  for (let g = 0; g < groups; g += stride) {
    const r0 = g * BLOCK, len = Math.min(BLOCK, rows - r0);
    for (let c = 0; c < cols; c++) {
      let prev = 0, mNone = 0, mDelta = 0;
      for (let j = 0, i = r0 * cols + c; j < len; j++, i += cols) {
        const y = Math.fround(x[i] * inv);
        const q = y < Q_LIMIT && y > -Q_LIMIT ? ((y + ROUND) - ROUND) | 0 : prev;
        const e = (q - prev) | 0;
        prev = q;
        mNone |= (q << 1) ^ (q >> 31);
        mDelta |= (e << 1) ^ (e >> 31);
      }
      // OR of the codes has the width of their maximum
      none += len * bitWidth(mNone >>> 0);
      delta += len * bitWidth(mDelta >>> 0);
    }
  }
  return delta < none ? "delta" : "none";
}

/** Appends fields of up to 31 bits to a word array, LSB first. */
class BitAppender {
  #acc = 0;
  #nb = 0;
  #o: number;
  constructor(readonly words: Int32Array, start: number) {
    this.#o = start;
  }
  put(v: number, w: number): void {
    if (w === 0) return;
    this.#acc |= v << this.#nb;
    this.#nb += w;
    if (this.#nb >= 32) {
      this.words[this.#o++] = this.#acc;
      this.#nb -= 32;
      this.#acc = this.#nb > 0 ? v >>> (w - this.#nb) : 0;
    }
  }
  flush(): number {
    if (this.#nb > 0) this.words[this.#o++] = this.#acc;
    this.#acc = this.#nb = 0;
    return this.#o;
  }
}

/** Encodes a frame's values into a fast body. */
export function fastEncode(f: FastFrame, p: FastParams): FastEncoded {
  const { x, rows, cols, dtype } = f;
  const n = x.length;
  const k = dtype === "f32" && n > 0 && p.kernels !== "js" ? fastKernels() : null;
  const loaded = k?.loadFrame(x, rows, cols) ?? null;
  const { lo, hi, maxAbs } = loaded ? rangeOf(loaded.lo, loaded.hi) : finiteRange(x);
  const eb = p.mode === "rel" ? p.errorBound * (hi - lo) : p.errorBound;
  if (!Number.isFinite(eb)) throw new RangeError(`error bound ${eb} is not finite`);
  const { step, checkEach } = quantStep(eb, maxAbs, dtype);
  const inv = Math.fround(1 / step);
  // the kernels round by adding 1.5·2^23, exact for |x · inv| < 2^22: true of every frame
  // without per-value checks (maxAbs / eb < 2^15), checked here all the same
  const wasm = loaded && !checkEach && Math.fround(maxAbs * inv) < 2 ** 22 ? k : null;
  const predictor = p.predictor === undefined || p.predictor === "auto"
    ? (wasm ? (wasm.chooseDelta(inv) ? "delta" : "none") : choosePredictor(x, rows, cols, inv))
    : p.predictor;
  if (wasm) {
    const r = encodeWasm(wasm, f, p, eb, step, inv, predictor);
    if (r) return r;
  }
  const delta = predictor === "delta";
  const { groups, blocks } = blockCount(rows, cols);

  // --- pass 2: quantized residuals, each block's width and its width without its top code --
  const z = scratchI32("fast.z", blocks * BLOCK); // [block][slot]
  const w1 = scratchU8("fast.w1", blocks);
  const w2 = scratchU8("fast.w2", blocks);
  const slot1 = scratchU8("fast.slot", blocks);
  const exc = scratchI32("fast.exc", n);
  const check = checkEach ? (q: number, i: number) => holds(q, step, x[i], eb, dtype) : null;
  let nExc = 0;
  for (let g = 0; g < groups; g++) {
    const r0 = g * BLOCK, len = Math.min(BLOCK, rows - r0);
    nExc = quantizeGroup(x, r0, len, cols, inv, z, g * cols, exc, nExc, check);
    residualBlocks(z, g * cols, cols, len, delta, w1, w2, slot1);
  }

  // --- which blocks store their largest code apart -------------------------------------------
  const lastLen = rows - (groups - 1) * BLOCK;
  const lenOf = (b: number) => (b >= blocks - cols ? lastLen : BLOCK);
  const widths = scratchU8("fast.widths", blocks);
  let outlierBits = 0;
  for (let pass = 0; pass < 2; pass++) {
    let wo = 0;
    for (let b = 0; b < blocks; b++) {
      // first pass: each outlier priced at its own width; second: at the frame's width
      const price = SLOT_BITS + (pass === 0 ? w1[b] : outlierBits);
      const apart = (w1[b] - w2[b]) * lenOf(b) > price;
      widths[b] = apart ? w2[b] | OUTLIER_FLAG : w1[b];
      if (apart && w1[b] > wo) wo = w1[b];
    }
    outlierBits = wo;
  }
  let outliers = 0, payloadWords = 0;
  for (let b = 0; b < blocks; b++) {
    const wb = widths[b];
    if (wb & OUTLIER_FLAG) outliers++;
    payloadWords += blockWords(lenOf(b), wb & ~OUTLIER_FLAG);
  }

  // --- layout -------------------------------------------------------------------------------
  const valueBytes = dtype === "f32" ? 4 : 2;
  const { widthsAt, outliersAt, payloadAt, excAt, total } = bodyLayout(
    blocks,
    outliers,
    outlierBits,
    payloadWords,
    nExc,
    valueBytes,
  );
  const body = new Uint8Array(total);
  writeHeader(body, p, predictor, eb, step, outliers, outlierBits, nExc, payloadWords);
  body.set(widths, widthsAt);

  // --- pass 3: outliers apart, then every block's codes at its width ------------------------
  const words = new Int32Array(body.buffer);
  const apart = new BitAppender(words, outliersAt >>> 2);
  let o = payloadAt >>> 2;
  for (let b = 0; b < blocks; b++) {
    const wb = widths[b], zb = b * BLOCK, len = lenOf(b);
    if (wb & OUTLIER_FLAG) {
      apart.put(slot1[b], SLOT_BITS);
      apart.put(z[zb + slot1[b]], outlierBits);
      z[zb + slot1[b]] = 0;
    }
    const w = wb & ~OUTLIER_FLAG;
    if (w !== 0) o = packBlock(z, zb, len, w, words, o);
  }
  apart.flush();

  // --- exceptions, ascending ------------------------------------------------------------
  if (nExc > 0) {
    const order = exc.subarray(0, nExc).sort(); // ascending: group-major order is not
    new Int32Array(body.buffer, excAt, nExc).set(order);
    if (valueBytes === 4) {
      const vals = new Uint32Array(body.buffer, excAt + 4 * nExc, nExc);
      for (let k = 0; k < nExc; k++) vals[k] = f.bits[order[k]];
    } else {
      const vals = new Uint16Array(body.buffer, excAt + 4 * nExc, nExc);
      for (let k = 0; k < nExc; k++) vals[k] = f.bits[order[k]];
    }
  }
  return { body, eb, predictor, exceptions: nExc, outliers, kernels: "js" };
}

/** Writes a body's fixed header (every byte of it). */
function writeHeader(
  body: Uint8Array,
  p: FastParams,
  predictor: FastPredictor,
  eb: number,
  step: number,
  outliers: number,
  outlierBits: number,
  exceptions: number,
  payloadWords: number,
): void {
  const dv = new DataView(body.buffer, body.byteOffset, HEADER_BYTES);
  body.fill(0, 0, HEADER_BYTES);
  body[0] = FAST_TAG, body[1] = PREDICTOR_IDS[predictor], body[2] = p.mode === "rel" ? 1 : 0;
  dv.setFloat64(4, p.errorBound, true);
  dv.setFloat64(12, eb, true);
  dv.setFloat64(20, step, true);
  dv.setUint32(28, outliers, true);
  body[32] = outlierBits;
  dv.setUint32(36, exceptions, true);
  dv.setUint32(40, payloadWords, true);
}

/**
 * Passes 2 and 3 in the WebAssembly kernels over the frame {@link FastKernels.loadFrame} took
 * (fp32 values, no per-value checks); null when the body does not fit their memory.
 */
function encodeWasm(
  k: FastKernels,
  f: FastFrame,
  p: FastParams,
  eb: number,
  step: number,
  inv: number,
  predictor: FastPredictor,
): FastEncoded | null {
  const q = k.quantize(inv, predictor === "delta");
  const { blocks } = blockCount(f.rows, f.cols);
  const { outliersAt, payloadAt, excAt, total } = bodyLayout(
    blocks,
    q.outliers,
    q.outlierBits,
    q.payloadWords,
    q.exceptions,
    4,
  );
  const body = k.pack(q, total, outliersAt, payloadAt, excAt);
  if (!body) return null;
  writeHeader(body, p, predictor, eb, step, q.outliers, q.outlierBits, q.exceptions, q.payloadWords);
  return { body, eb, predictor, exceptions: q.exceptions, outliers: q.outliers, kernels: "wasm" };
}
