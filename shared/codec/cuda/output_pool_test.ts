/** The reuse pool of decode outputs (pure: no library or device needed). */
import { assert, assertEquals, assertNotStrictEquals, assertStrictEquals, assertThrows } from "@std/assert";
import { carve, OutputPool } from "./output_pool.ts";

const MiB = 2 ** 18; // values of f32 in a MiB

Deno.test("OutputPool.take() gives back a returned buffer of about the size, else a new one", () => {
  const pool = new OutputPool();
  const a = pool.take(3 * MiB + 5);
  assertEquals(a.length, 4 * MiB, "whole MiB");
  pool.give(a);
  assertEquals(pool.idleBytes, a.byteLength);
  assertStrictEquals(pool.take(3 * MiB), a, "a smaller call reuses it");
  assertEquals(pool.idleBytes, 0);
  pool.give(a);
  assertNotStrictEquals(pool.take(5 * MiB), a, "too small for the call");
  assertNotStrictEquals(pool.take(MiB), a, "over twice the call: left for a larger one");
  // the smallest that fits wins
  const big = pool.take(8 * MiB);
  pool.give(big);
  assertStrictEquals(pool.take(3 * MiB + 1), a);
  assertStrictEquals(pool.take(7 * MiB), big);
  assertEquals(pool.size, 0);
  assert(pool.take(0).length > 0);
  assertThrows(() => pool.take(-1), RangeError);
});

Deno.test("OutputPool.give() keeps at most maxIdleBytes and refuses a buffer twice", () => {
  const pool = new OutputPool(8 * 2 ** 20);
  const a = pool.take(4 * MiB), b = pool.take(4 * MiB), c = pool.take(MiB);
  pool.give(a);
  pool.give(b);
  pool.give(c); // over the limit: dropped
  assertEquals(pool.size, 2);
  assertEquals(pool.idleBytes, 8 * 2 ** 20);
  assertThrows(() => pool.give(a), Error, "already in the pool");
});

Deno.test("carve() lays views one after another from the buffer's head", () => {
  const buf = new Float32Array(10);
  const [x, y, z] = carve(buf, [3, 0, 4]);
  assertEquals([x.byteOffset, y.byteOffset, z.byteOffset], [0, 12, 12]);
  assertEquals([x.length, y.length, z.length], [3, 0, 4]);
  assertStrictEquals(x.buffer, buf.buffer);
  assertThrows(() => carve(buf, [6, 5]), RangeError);
});
