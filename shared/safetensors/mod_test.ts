import { assertEquals, assertThrows } from "@std/assert";
import { parseSafetensors, SafetensorsFormatError, writeSafetensors } from "./mod.ts";

function withHeader(header: unknown, data: Uint8Array): Uint8Array {
  const h = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

Deno.test("writeSafetensors() output parses back with dtype, shape, bits and metadata", () => {
  const file = writeSafetensors({
    a: { dtype: "f32", shape: [2, 2], data: new Float32Array([1, -0, NaN, 3]) },
    b: { dtype: "f16", shape: [3], data: new Uint16Array([0x3c00, 0x7c00, 0x8000]) },
    c: { dtype: "bf16", shape: [1, 1], data: new Uint16Array([0x3f80]) },
  }, { metadata: { format: "pt" } });
  const st = parseSafetensors(file);
  assertEquals(st.metadata, { format: "pt" });
  assertEquals([...st.entries.keys()], ["a", "b", "c"]);
  const a = st.tensor("a");
  assertEquals([a.dtype, a.shape], ["f32", [2, 2]]);
  assertEquals([...new Uint32Array(a.data.buffer)], [0x3f800000, 0x80000000, 0x7fc00000, 0x40400000]);
  assertEquals([...st.tensor("b").data], [0x3c00, 0x7c00, 0x8000]);
  assertEquals(st.tensor("c").dtype, "bf16");
  assertEquals((8 + Number(new DataView(file.buffer).getBigUint64(0, true))) % 8, 0);
});

Deno.test("parseSafetensors() lists non-float dtypes and refuses to convert them", () => {
  const st = parseSafetensors(
    withHeader({ ids: { dtype: "I64", shape: [2], data_offsets: [0, 16] } }, new Uint8Array(16)),
  );
  assertEquals(st.entries.get("ids")?.dtype, "I64");
  assertEquals(st.bytes("ids").length, 16);
  assertThrows(() => st.tensor("ids"), TypeError);
  assertThrows(() => st.tensor("missing"), RangeError);
});

Deno.test("parseSafetensors() rejects malformed headers with SafetensorsFormatError", () => {
  const d8 = new Uint8Array(8);
  const cases: [unknown, Uint8Array][] = [
    [{ x: { dtype: "F99", shape: [2], data_offsets: [0, 8] } }, d8],
    [{ x: { dtype: "F32", shape: [-2], data_offsets: [0, 8] } }, d8],
    [{ x: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, d8],
    [{ x: { dtype: "F32", shape: [2], data_offsets: [0, 16] } }, d8],
    [{ x: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }, d8], // hole
    [{ x: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, d8], // trailing bytes
    [{
      x: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
      y: { dtype: "F32", shape: [1], data_offsets: [4, 8] },
    }, d8], // overlap
    [{ __metadata__: { n: 3 } }, new Uint8Array(0)],
    [[1, 2], new Uint8Array(0)],
  ];
  for (const [header, data] of cases) {
    assertThrows(
      () => parseSafetensors(withHeader(header, data)),
      SafetensorsFormatError,
      undefined,
      JSON.stringify(header),
    );
  }
  const huge = new Uint8Array(16);
  new DataView(huge.buffer).setBigUint64(0, 1n << 60n, true);
  assertThrows(() => parseSafetensors(huge), SafetensorsFormatError, "over the limit");
  const notJson = withHeader({}, new Uint8Array(0));
  notJson[8] = 0x7b + 1;
  assertThrows(() => parseSafetensors(notJson), SafetensorsFormatError, "JSON");
});

Deno.test("parseSafetensors() rejects every truncation of a valid file", () => {
  const file = writeSafetensors({ w: { dtype: "f16", shape: [4], data: new Uint16Array(4) } });
  for (let cut = 0; cut < file.length; cut++) {
    assertThrows(() => parseSafetensors(file.subarray(0, cut)), SafetensorsFormatError);
  }
});

Deno.test("writeSafetensors() writes raw-byte tensors under their own dtype and checks their size", () => {
  const q = new Int8Array([-127, 0, 5, 127]);
  const file = writeSafetensors({
    q: { stDtype: "I8", shape: [2, 2], bytes: new Uint8Array(q.buffer) },
    s: { dtype: "f32", shape: [2], data: new Float32Array([0.5, 2]) },
  });
  const st = parseSafetensors(file);
  assertEquals(st.entries.get("q")?.dtype, "I8");
  assertEquals([...new Int8Array(st.bytes("q").slice().buffer)], [-127, 0, 5, 127]);
  assertEquals([...st.tensor("s").data], [0.5, 2]);
  assertThrows(
    () => writeSafetensors({ q: { stDtype: "I8", shape: [3], bytes: new Uint8Array(2) } }),
    TypeError,
  );
  assertThrows(
    () => writeSafetensors({ q: { stDtype: "Q4", shape: [1], bytes: new Uint8Array(1) } }),
    TypeError,
  );
});
