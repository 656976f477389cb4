import { assertEquals, assertNotStrictEquals, assertStrictEquals, assertThrows } from "@std/assert";
import { acquireArena, GatherArena, releaseArena } from "./gather_arena.ts";

Deno.test("GatherArena hands out views front to back, refuses past what was reserved, and reuses its buffer", () => {
  const a = new GatherArena();
  a.reserve(10);
  const x = a.take(4), y = a.take(6);
  assertStrictEquals(x.buffer, y.buffer);
  assertEquals([x.byteOffset, y.byteOffset], [0, 16]);
  assertThrows(() => a.take(1), RangeError, "past 10 reserved");
  a.reserve(8); // smaller: the same memory, from the front again
  assertStrictEquals(a.take(8).buffer, x.buffer);
  a.reserve(11); // larger: a new buffer
  assertNotStrictEquals(a.take(11).buffer, x.buffer);
});

Deno.test("acquireArena() gives a released arena back, and never one twice", () => {
  const a = acquireArena();
  const b = acquireArena();
  assertNotStrictEquals(a, b);
  releaseArena(a);
  releaseArena(a); // a second release must not let two jobs share it
  const c = acquireArena(), d = acquireArena();
  assertStrictEquals(c, a);
  assertNotStrictEquals(d, a);
  for (const x of [b, c, d]) releaseArena(x);
});
