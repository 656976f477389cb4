/**
 * Bin tables for the quantize-first path: the reconstruction of bin `q`, `round(q · 2eb)` in
 * the tensor's dtype, precomputed once per frame for every bin the frame can use, as the
 * value (fp32) and as the storage bits. They replace one fp16/bf16 rounding per value with
 * one table load, and give exactly what {@link rounderFor} gives.
 * @module
 */
import { type Dtype, f16Table32, f32ToBf16Bits, f32ToF16Bits } from "../../dtype/mod.ts";

/** Largest table built; frames needing more bins take the per-value path. */
export const MAX_BIN_TABLE = 1 << 20;

/** Largest |bin| a quantize-first chain uses; a bin beyond it is never coded. */
export const QMAX = 2 ** 30;

/**
 * The bin a quantize-first chain goes on from after an exception whose reconstruction is `v`
 * (0 for a non-finite value): v's own bin `round(v / 2eb)`, or 0 beyond ±{@link QMAX}.
 * Encoders and decoders (CPU and GPU) all take it from here, so the chain never breaks.
 *
 * @example
 * ```ts
 * import { exceptionBin } from "./bins.ts";
 * exceptionBin(0.26, 10); // 3 (eb = 0.05)
 * exceptionBin(1e300, 10); // 0: beyond ±QMAX
 * ```
 */
export function exceptionBin(v: number, inv: number): number {
  const e = Math.round(v * inv);
  return e >= -QMAX && e <= QMAX ? e | 0 : 0;
}

/** Reconstructions of bins `lo .. lo + size - 1`. */
export interface BinTable {
  lo: number;
  size: number;
  /** `round(q · 2eb)` as fp32. */
  value: Float32Array;
  /** The same as storage bits of the dtype (fp16/bf16 patterns, or fp32 bits). */
  bits: Uint16Array | Uint32Array;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Storage bits of `round(v)` in `dtype`, the value {@link rounderFor} returns for `v`. */
export function storageBits(v: number, dtype: Dtype): number {
  if (dtype === "f16") return f32ToF16Bits(v);
  if (dtype === "bf16") return f32ToBf16Bits(v);
  f32[0] = v;
  return u32[0];
}

/** Builds the table for bins `lo..hi` (inclusive), or returns undefined when it would be too big. */
export function binTable(twoEb: number, dtype: Dtype, lo: number, hi: number): BinTable | undefined {
  if (!(hi >= lo) || hi - lo + 1 > MAX_BIN_TABLE) return undefined;
  const size = hi - lo + 1;
  const value = new Float32Array(size);
  if (dtype === "f32") {
    for (let i = 0; i < size; i++) value[i] = (lo + i) * twoEb;
    return { lo, size, value, bits: new Uint32Array(value.buffer) };
  }
  const bits = new Uint16Array(size);
  if (dtype === "f16") {
    const t = f16Table32();
    for (let i = 0; i < size; i++) value[i] = t[bits[i] = f32ToF16Bits((lo + i) * twoEb)];
  } else {
    const vu = new Uint32Array(value.buffer);
    for (let i = 0; i < size; i++) vu[i] = (bits[i] = f32ToBf16Bits((lo + i) * twoEb)) << 16;
  }
  return { lo, size, value, bits };
}
