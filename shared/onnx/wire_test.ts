import { assertEquals } from "@std/assert";
import { ProtoWriter } from "./wire.ts";

Deno.test("ProtoWriter.varint() writes base-128 varints and 10-byte negatives", () => {
  assertEquals([...new ProtoWriter().varint(1, 1).finish()], [0x08, 0x01]);
  assertEquals([...new ProtoWriter().varint(2, 300).finish()], [0x10, 0xac, 0x02]);
  const neg = new ProtoWriter().varint(1, -1).finish();
  assertEquals(neg.length, 11);
  assertEquals(neg[10], 0x01);
});

Deno.test("ProtoWriter.message() nests with a length prefix", () => {
  const sub = new ProtoWriter().string(1, "ab");
  const out = new ProtoWriter().message(3, sub).float32(4, 1).finish();
  assertEquals([...out], [0x1a, 4, 0x0a, 2, 0x61, 0x62, 0x25, 0, 0, 0x80, 0x3f]);
});
