/**
 * Assertions shared by the codec's tests (CPU and WebGPU): the error-bound guarantee
 * checked element by element, and bit identity of two decoded tensors.
 * @module
 */
import { assertEquals } from "@std/assert";
import { type Tensor, toFloat32 } from "../dtype/mod.ts";

/** The storage bits of a tensor: u32 per fp32 value, u16 per fp16/bf16 value. */
export function bitsOf(t: Tensor): Uint32Array | Uint16Array {
  return t.dtype === "f32"
    ? new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length)
    : t.data as Uint16Array;
}

/**
 * Asserts the guarantee exactly: specials and -0 bit-exact, every finite value within eb.
 * `signedZero: false` lets -0 come back as +0 (the fast codec keeps it within the bound, as 0).
 */
export function assertBound(
  input: Tensor,
  output: Tensor,
  eb: number,
  ctx: string,
  opts: { signedZero?: boolean } = {},
): void {
  const signedZero = opts.signedZero ?? true;
  assertEquals(output.dtype, input.dtype, ctx);
  assertEquals(output.shape, input.shape, ctx);
  const x = toFloat32(input), y = toFloat32(output);
  const bi = bitsOf(input), bo = bitsOf(output);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (!Number.isFinite(v) || (signedZero && Object.is(v, -0))) {
      assertEquals(bo[i], bi[i], `${ctx}: special at ${i}`);
    } else if (!(Math.abs(y[i] - v) <= eb)) throw new Error(`${ctx}: |${y[i]} - ${v}| > ${eb} at ${i}`);
  }
}

/** Asserts that two tensors hold the same storage bits. */
export function assertSameBits(a: Tensor, b: Tensor, ctx: string): void {
  const x = bitsOf(a), y = bitsOf(b);
  assertEquals(x.length, y.length, ctx);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) throw new Error(`${ctx}: bits differ at ${i}`);
}
