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
  const screen = Number.isFinite(eb);
  if (screen && dtype === "f16" && !anyViolationF16(x, inBits as Uint16Array, out as Uint16Array, eb)) {
    return -1;
  }
  if (screen && dtype === "f32" && !anyViolationF32(x, inBits as Uint32Array, out as Float32Array, eb)) {
    return -1;
  }
  // bf16, a non-finite eb, or a screen that found one: look value by value
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

// The screens below test the same condition as the loop above without a branch per value:
// a NaN or infinite input fails |o - v| <= eb whenever its bits changed (eb is finite), and
// x holds the values of the input bits, so -0 is the bit pattern with only the sign set.

/** Whether any fp16 value breaks the guarantee. */
function anyViolationF16(x: Float32Array, inBits: Uint16Array, outBits: Uint16Array, eb: number): boolean {
  const table = f16Table32();
  let bad = 0;
  for (let i = 0; i < x.length; i++) {
    const ib = inBits[i], ob = outBits[i];
    bad |= +(ib !== ob) & (+!(Math.abs(table[ob] - x[i]) <= eb) | +(ib === 0x8000));
  }
  return bad !== 0;
}

/** Whether any fp32 value breaks the guarantee. */
function anyViolationF32(x: Float32Array, inBits: Uint32Array, out: Float32Array, eb: number): boolean {
  const outBits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  let bad = 0;
  for (let i = 0; i < x.length; i++) {
    const ib = inBits[i];
    bad |= +(ib !== outBits[i]) & (+!(Math.abs(out[i] - x[i]) <= eb) | +(ib === 0x80000000));
  }
  return bad !== 0;
}
