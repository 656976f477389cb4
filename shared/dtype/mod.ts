/**
 * Tensors as the codec and the file formats see them, and the fp16/bf16 conversions they
 * need. A tensor is a dtype, a shape and a flat row-major buffer; fp16 and bf16 data are
 * kept as their raw 16-bit patterns (`Uint16Array`) so that NaN payloads, infinities and
 * -0 survive untouched. This module knows nothing about files or compression.
 *
 * @example
 * ```ts
 * import { f16BitsToF32, f32ToF16Bits } from "./mod.ts";
 * console.log(f16BitsToF32(f32ToF16Bits(1.5))); // 1.5
 * ```
 * @module
 */

/** Element types a tensor can hold. */
export type Dtype = "f32" | "f16" | "bf16";

/** A dense row-major tensor. `data` holds fp32 values, or fp16/bf16 bit patterns. */
export interface Tensor {
  dtype: Dtype;
  shape: number[];
  data: Float32Array | Uint16Array;
}

/** Bytes per element of each dtype. */
export const DTYPE_BYTES: Readonly<Record<Dtype, number>> = { f32: 4, f16: 2, bf16: 2 };

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/**
 * Rounds a number to the nearest fp16 (ties to even) and returns its bit pattern.
 * NaN keeps the top payload bits (and stays a NaN); overflow gives ±Inf.
 *
 * @example
 * ```ts
 * import { f32ToF16Bits } from "./mod.ts";
 * console.log(f32ToF16Bits(-2).toString(16)); // "c000"
 * ```
 */
export function f32ToF16Bits(v: number): number {
  scratchF32[0] = v;
  const x = scratchU32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 112; // re-biased exponent (127 -> 15)
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    if (rem > half || (rem === half && (h & 1) === 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++;
  return sign | h;
}

let f16Table: Float32Array | undefined;

/** The 65536 fp16 values as fp32, built once on first use (256 KiB). */
export function f16Table32(): Float32Array {
  if (f16Table) return f16Table;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) t[h] = sign * mant * 2 ** -24;
    else if (exp === 0x1f) t[h] = mant === 0 ? sign * Infinity : NaN;
    else t[h] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  f16Table = t;
  return t;
}

/**
 * The value of an fp16 bit pattern.
 *
 * @example
 * ```ts
 * import { f16BitsToF32 } from "./mod.ts";
 * console.log(f16BitsToF32(0x3c00)); // 1
 * ```
 */
export function f16BitsToF32(h: number): number {
  return f16Table32()[h & 0xffff];
}

/**
 * Rounds a number to the nearest bf16 (ties to even) and returns its bit pattern.
 *
 * @example
 * ```ts
 * import { f32ToBf16Bits } from "./mod.ts";
 * console.log(f32ToBf16Bits(1).toString(16)); // "3f80"
 * ```
 */
export function f32ToBf16Bits(v: number): number {
  scratchF32[0] = v;
  const x = scratchU32[0];
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return (x >>> 16) | 0x40;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/**
 * The value of a bf16 bit pattern.
 *
 * @example
 * ```ts
 * import { bf16BitsToF32 } from "./mod.ts";
 * console.log(bf16BitsToF32(0x3f80)); // 1
 * ```
 */
export function bf16BitsToF32(h: number): number {
  scratchU32[0] = (h & 0xffff) << 16;
  return scratchF32[0];
}

/** Number of elements of a shape; throws `RangeError` on a negative or fractional dim. */
export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new RangeError(`bad dimension ${d} in shape [${shape}]`);
    n *= d;
  }
  return n;
}

/**
 * The tensor's values as fp32 (a copy for fp16/bf16, the same buffer for f32).
 *
 * @example
 * ```ts
 * import { toFloat32 } from "./mod.ts";
 * console.log(toFloat32({ dtype: "f16", shape: [1], data: new Uint16Array([0x3c00]) })[0]); // 1
 * ```
 */
export function toFloat32(t: Tensor): Float32Array {
  if (t.dtype === "f32") return t.data as Float32Array;
  const src = t.data as Uint16Array;
  const out = new Float32Array(src.length);
  if (t.dtype === "f16") {
    const table = f16Table32();
    for (let i = 0; i < src.length; i++) out[i] = table[src[i]];
  } else {
    const u = new Uint32Array(out.buffer);
    for (let i = 0; i < src.length; i++) u[i] = src[i] << 16;
  }
  return out;
}

/**
 * Converts fp32 values to a tensor of the given dtype (round to nearest even).
 *
 * @example
 * ```ts
 * import { fromFloat32 } from "./mod.ts";
 * console.log(fromFloat32(new Float32Array([1]), [1], "bf16").data[0]); // 16256
 * ```
 */
export function fromFloat32(values: Float32Array, shape: number[], dtype: Dtype): Tensor {
  if (shapeSize(shape) !== values.length) {
    throw new TypeError(`shape [${shape}] does not hold ${values.length} values`);
  }
  if (dtype === "f32") return { dtype, shape, data: values };
  const out = new Uint16Array(values.length);
  const conv = dtype === "f16" ? f32ToF16Bits : f32ToBf16Bits;
  for (let i = 0; i < values.length; i++) out[i] = conv(values[i]);
  return { dtype, shape, data: out };
}

/** Checks that a tensor's buffer type and length match its dtype and shape; throws `TypeError`. */
export function checkTensor(t: Tensor): void {
  if (t.dtype !== "f32" && t.dtype !== "f16" && t.dtype !== "bf16") {
    throw new TypeError(`unknown dtype '${t.dtype}'`);
  }
  if (!Array.isArray(t.shape)) throw new TypeError("tensor shape must be an array");
  const n = shapeSize(t.shape);
  const want = t.dtype === "f32" ? Float32Array : Uint16Array;
  if (!(t.data instanceof want)) {
    throw new TypeError(`dtype ${t.dtype} needs a ${want.name}, got ${t.data?.constructor?.name}`);
  }
  if (t.data.length !== n) {
    throw new TypeError(`shape [${t.shape}] needs ${n} values, data has ${t.data.length}`);
  }
}
