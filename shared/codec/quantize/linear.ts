/**
 * Quantize stage: linear quantization with bins of 2·eb around a prediction. The bound is
 * enforced here, in the storage type: a value is kept only if its reconstruction, rounded
 * to the tensor's dtype, lies within eb of the input. Everything else — NaN, ±Inf, -0,
 * codes beyond the radius, values the bins cannot hold — is an exception stored with its
 * exact bits, in the order the predictor met it. Symbol 0 marks an exception; symbol
 * `code + RADIUS` a quantized value.
 * @module
 */
import type { ByteReader, ByteWriter } from "../bytes.ts";
import { bf16BitsToF32, type Dtype, f16Table32, f32ToBf16Bits, f32ToF16Bits } from "../../dtype/mod.ts";

/** Stage tag written before the quantizer's metadata. */
export const QUANTIZE_TAG = 0x51; // 'Q'
/** Half the number of bins: codes lie in (-RADIUS, RADIUS). */
export const RADIUS = 32768;

/** Rounds a number to the nearest value of the dtype (as a number). */
export function rounderFor(dtype: Dtype): (v: number) => number {
  if (dtype === "f32") return Math.fround;
  if (dtype === "f16") {
    const table = f16Table32();
    return (v: number) => table[f32ToF16Bits(v)];
  }
  return (v: number) => bf16BitsToF32(f32ToBf16Bits(v));
}

/** The quantizer's state for one frame; the predictors drive it value by value. */
export class LinearQuantizer {
  readonly eb: number;
  readonly twoEb: number;
  readonly inv: number;
  readonly round: (v: number) => number;
  readonly dtype: Dtype;
  /** Reconstruction of the last value (0 in place of a non-finite exception), for prediction. */
  r = 0;
  /** Flat indices of the exceptions, in order. */
  excIdx: Int32Array;
  excCount = 0;
  /** Decoder side: exception values for prediction (non-finite as 0), and the next one's index. */
  excValues: Float32Array = new Float32Array(0);
  excNext = 0;

  constructor(eb: number, dtype: Dtype, capacity = 64) {
    this.eb = eb;
    this.twoEb = 2 * eb;
    this.inv = eb > 0 ? 1 / (2 * eb) : 0;
    this.round = rounderFor(dtype);
    this.dtype = dtype;
    this.excIdx = new Int32Array(capacity);
  }

  /** Quantizes `x` against `pred`; returns the symbol and leaves the reconstruction in `r`. */
  quantize(x: number, pred: number, idx: number): number {
    const code = Math.round((x - pred) * this.inv) + 0; // + 0: the decoder never sees -0
    if (code > -RADIUS && code < RADIUS) {
      const r = this.round(pred + code * this.twoEb);
      if (Math.abs(r - x) <= this.eb && (x !== 0 || 1 / x > 0)) {
        this.r = r;
        return code + RADIUS;
      }
    }
    this.exception(x, idx);
    return 0;
  }

  /** Records `x` (at flat index `idx`) as stored exactly. */
  exception(x: number, idx: number): void {
    if (this.excCount === this.excIdx.length) {
      const next = new Int32Array(this.excIdx.length * 2);
      next.set(this.excIdx);
      this.excIdx = next;
    }
    this.excIdx[this.excCount++] = idx;
    this.r = Number.isFinite(x) ? x : 0;
  }

  /** Decoder: the reconstruction for `sym` against `pred` (also left in `r`). */
  recover(sym: number, pred: number, idx: number, reader: ByteReader): number {
    if (sym !== 0) return this.r = this.round(pred + (sym - RADIUS) * this.twoEb);
    if (this.excNext >= this.excValues.length) reader.fail("more exceptions than stored");
    if (this.excCount === this.excIdx.length) {
      const next = new Int32Array(this.excIdx.length * 2);
      next.set(this.excIdx);
      this.excIdx = next;
    }
    this.excIdx[this.excCount++] = idx;
    return this.r = this.excValues[this.excNext++];
  }
}

/** Writes the quantizer's metadata: eb and the exceptions' exact bits (from `bits`, the input). */
export function saveQuantizer(q: LinearQuantizer, bits: Uint32Array | Uint16Array, w: ByteWriter): void {
  w.u8(QUANTIZE_TAG);
  w.f64(q.eb);
  w.varint(q.excCount);
  const width = bits.BYTES_PER_ELEMENT;
  w.ensure(q.excCount * width);
  const dv = new DataView(w.buf.buffer);
  for (let i = 0; i < q.excCount; i++) {
    const b = bits[q.excIdx[i]];
    if (width === 4) dv.setUint32(w.pos, b, true);
    else dv.setUint16(w.pos, b, true);
    w.pos += width;
  }
}

/** Loaded quantizer metadata; `excBits` are the exceptions' exact bit patterns. */
export interface LoadedQuantizer {
  q: LinearQuantizer;
  excBits: Uint32Array | Uint16Array;
}

/** Reads what {@link saveQuantizer} wrote; `n` bounds the exception count. */
export function loadQuantizer(r: ByteReader, dtype: Dtype, n: number): LoadedQuantizer {
  r.tag(QUANTIZE_TAG, "quantize");
  const at = r.pos;
  const eb = r.f64("error bound");
  if (!(eb >= 0) || !Number.isFinite(eb)) r.fail(`bad error bound ${eb}`, at);
  const count = r.varint("exception count", n);
  const width = dtype === "f32" ? 4 : 2;
  const raw = r.bytes(count * width, "exceptions").slice();
  const q = new LinearQuantizer(eb, dtype, Math.max(count, 1));
  const excBits = width === 4 ? new Uint32Array(raw.buffer) : new Uint16Array(raw.buffer);
  const values = width === 4 ? new Float32Array(raw.buffer) : new Float32Array(count);
  if (dtype === "f16") {
    const t = f16Table32();
    for (let i = 0; i < count; i++) values[i] = t[excBits[i]];
  } else if (dtype === "bf16") { for (let i = 0; i < count; i++) values[i] = bf16BitsToF32(excBits[i]); }
  const finite = Float32Array.from(values, (v) => Number.isFinite(v) ? v : 0);
  q.excValues = finite;
  return { q, excBits };
}
