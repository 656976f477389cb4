/**
 * Turns a reconstruction (fp32 values in original order, exceptions holding stand-ins) into
 * output data of the tensor's dtype with every exception's exact bits, and checks the
 * error-bound guarantee against the input.
 * @module
 */
import { type Dtype, f16Table32, f32ToF16Bits } from "../dtype/mod.ts";

/** Output data in `dtype`: rounded reconstruction, exceptions (flat indices) set to their bits. */
export function assemble(
  recon: Float32Array,
  dtype: Dtype,
  excIdx: Int32Array,
  excBits: ArrayLike<number>,
): Float32Array | Uint16Array {
  const n = recon.length;
  if (dtype === "f32") {
    const out = new Float32Array(recon);
    const u = new Uint32Array(out.buffer);
    for (let i = 0; i < excBits.length; i++) u[excIdx[i]] = excBits[i];
    return out;
  }
  const out = new Uint16Array(n);
  if (dtype === "bf16") {
    const u = new Uint32Array(recon.buffer, recon.byteOffset, n);
    for (let i = 0; i < n; i++) out[i] = u[i] >>> 16;
  } else {
    for (let i = 0; i < n; i++) out[i] = f32ToF16Bits(recon[i]);
  }
  for (let i = 0; i < excBits.length; i++) out[excIdx[i]] = excBits[i];
  return out;
}

/**
 * The codec's own check before it returns a stream: every output value whose bits differ
 * from the input's is finite, not -0, and within `eb`. Returns the first failing index or -1.
 */
export function firstBoundViolation(
  x: Float32Array,
  inBits: Uint32Array | Uint16Array,
  out: Float32Array | Uint16Array,
  dtype: Dtype,
  eb: number,
): number {
  const outBits = dtype === "f32"
    ? new Uint32Array(out.buffer, out.byteOffset, out.length)
    : out as Uint16Array;
  const table = dtype === "f16" ? f16Table32() : undefined;
  const f = new Float32Array(1);
  const fu = new Uint32Array(f.buffer);
  for (let i = 0; i < x.length; i++) {
    if (outBits[i] === inBits[i]) continue;
    const v = x[i];
    let o: number;
    if (dtype === "f32") o = (out as Float32Array)[i];
    else if (table) o = table[outBits[i]];
    else {
      fu[0] = outBits[i] << 16;
      o = f[0];
    }
    if (!(Math.abs(o - v) <= eb) || !Number.isFinite(v) || (v === 0 && 1 / v < 0)) return i;
  }
  return -1;
}
