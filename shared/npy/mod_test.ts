import { assertEquals, assertThrows } from "@std/assert";
import { NpyFormatError, readNpy, writeNpy } from "./mod.ts";
import { KV_SAMPLES_DIR } from "../../tests/_harness/paths.ts";

Deno.test("readNpy() reads a real KV sample written by NumPy", () => {
  const t = readNpy(Deno.readFileSync(`${KV_SAMPLES_DIR}/stories260K/sample-00.k.npy`));
  assertEquals(t.dtype, "f32");
  assertEquals(t.shape, [5, 512, 4, 8]);
  assertEquals(t.data.length, 5 * 512 * 4 * 8);
  assertEquals([...t.data].every(Number.isFinite), true);
});

Deno.test("writeNpy() output reads back with the same dtype, shape and bits", () => {
  const f32 = {
    dtype: "f32" as const,
    shape: [2, 3],
    data: new Float32Array([1, -0, NaN, Infinity, 2.5, -1e-30]),
  };
  const back = readNpy(writeNpy(f32));
  assertEquals(back.shape, [2, 3]);
  assertEquals(new Uint32Array(back.data.buffer), new Uint32Array(f32.data.buffer));
  const f16 = { dtype: "f16" as const, shape: [3], data: new Uint16Array([0x3c00, 0x8000, 0x7e01]) };
  const b16 = readNpy(writeNpy(f16));
  assertEquals([b16.dtype, b16.shape, [...b16.data]], ["f16", [3], [0x3c00, 0x8000, 0x7e01]]);
  const scalar = readNpy(writeNpy({ dtype: "f32", shape: [], data: new Float32Array([7]) }));
  assertEquals([scalar.shape, scalar.data[0]], [[], 7]);
});

Deno.test("writeNpy() aligns the header to 64 bytes", () => {
  const bytes = writeNpy({ dtype: "f16", shape: [4, 5], data: new Uint16Array(20) });
  assertEquals((bytes.length - 40) % 64, 0);
  assertEquals(bytes[bytes.length - 41], 0x0a);
});

Deno.test("readNpy() reads big-endian and version 2 headers", () => {
  const dict = "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }";
  const head = new Uint8Array(12 + dict.length);
  head.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 2, 0]);
  new DataView(head.buffer).setUint32(8, dict.length, true);
  for (let i = 0; i < dict.length; i++) head[12 + i] = dict.charCodeAt(i);
  const data = new Uint8Array(8);
  new DataView(data.buffer).setFloat32(0, 1.5, false);
  new DataView(data.buffer).setFloat32(4, -3, false);
  const t = readNpy(new Uint8Array([...head, ...data]));
  assertEquals([...t.data], [1.5, -3]);
});

Deno.test("readNpy() rejects truncated, foreign and Fortran-order files", () => {
  const good = writeNpy({ dtype: "f32", shape: [4], data: new Float32Array(4) });
  for (let cut = 0; cut < good.length; cut++) {
    assertThrows(() => readNpy(good.subarray(0, cut)), NpyFormatError);
  }
  const text = String.fromCharCode(...good);
  const enc = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
  assertThrows(() => readNpy(enc(text.replace("'<f4'", "'<i8'"))), NpyFormatError, "dtype");
  assertThrows(() => readNpy(enc(text.replace("False", "True "))), NpyFormatError, "Fortran");
  const bad = good.slice();
  bad[6] = 9;
  assertThrows(() => readNpy(bad), NpyFormatError, "version");
});
