import { assertEquals, assertThrows } from "@std/assert";
import {
  bf16BitsToF32,
  checkTensor,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
  fromFloat32,
  toFloat32,
} from "./mod.ts";

Deno.test("f32ToF16Bits() round-trips every finite fp16 and rounds ties to even", () => {
  for (let h = 0; h < 65536; h++) {
    const v = f16BitsToF32(h);
    if (Number.isNaN(v)) continue;
    assertEquals(f32ToF16Bits(v), h, `bits ${h.toString(16)}`);
  }
  assertEquals(f32ToF16Bits(1 + 2 ** -11), 0x3c00); // tie -> even (down)
  assertEquals(f32ToF16Bits(1 + 3 * 2 ** -11), 0x3c02); // tie -> even (up)
  assertEquals(f32ToF16Bits(65520), 0x7c00); // overflow -> inf
  assertEquals(f32ToF16Bits(2 ** -25), 0); // half of the smallest subnormal -> 0 (even)
  assertEquals(f32ToF16Bits(2 ** -25 * 1.5), 1);
  assertEquals(f32ToF16Bits(-0), 0x8000);
  assertEquals(Number.isNaN(f16BitsToF32(f32ToF16Bits(NaN))), true);
});

Deno.test("f32ToBf16Bits() round-trips bf16 values and keeps NaN a NaN", () => {
  for (let h = 0; h < 65536; h += 7) {
    const v = bf16BitsToF32(h);
    if (Number.isNaN(v)) continue;
    assertEquals(f32ToBf16Bits(v), h);
  }
  assertEquals(Number.isNaN(bf16BitsToF32(f32ToBf16Bits(NaN))), true);
  assertEquals(f32ToBf16Bits(1 + 2 ** -8), 0x3f80); // tie -> even
});

Deno.test("toFloat32() and fromFloat32() convert between dtypes", () => {
  const v = new Float32Array([1, -2.5, 0.099975586]);
  for (const dtype of ["f16", "bf16"] as const) {
    const t = fromFloat32(v, [3], dtype);
    checkTensor(t);
    const back = toFloat32(t);
    for (let i = 0; i < 3; i++) assertEquals(Math.abs(back[i] - v[i]) < 1e-2, true);
  }
});

Deno.test("checkTensor() rejects a buffer that does not match the shape", () => {
  assertThrows(() => checkTensor({ dtype: "f16", shape: [2], data: new Float32Array(2) }), TypeError);
  assertThrows(() => checkTensor({ dtype: "f32", shape: [3], data: new Float32Array(2) }), TypeError);
  assertThrows(() => checkTensor({ dtype: "f32", shape: [-1], data: new Float32Array(0) }), RangeError);
});
