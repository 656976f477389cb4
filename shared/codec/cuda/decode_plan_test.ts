/** Planning of CUDA decode calls (pure: no library or device needed). */
import { assertEquals, assertStrictEquals, assertThrows } from "@std/assert";
import { MAX_CALL_VALUES, outputFor, splitCalls } from "./decode_plan.ts";

Deno.test("splitCalls() cuts consecutive runs that stay within the maximum, covering every index once", () => {
  assertEquals(splitCalls([], 10), []);
  assertEquals(splitCalls([4, 4, 2, 5, 4, 1], 10), [[0, 3], [3, 6]]);
  assertEquals(splitCalls([4, 4, 2, 5, 5, 1], 10), [[0, 3], [3, 5], [5, 6]]);
  assertEquals(splitCalls([3, 8, 3], 10), [[0, 1], [1, 2], [2, 3]]);
  // a size past the maximum still gets a run of its own
  assertEquals(splitCalls([2, 25, 2], 10), [[0, 1], [1, 2], [2, 3]]);
  const sizes = Array.from({ length: 512 }, () => 2 ** 20);
  const runs = splitCalls(sizes);
  assertEquals(runs, [[0, 512]]);
  assertEquals(splitCalls([...sizes, ...sizes, ...sizes], MAX_CALL_VALUES), [[0, 1024], [1024, 1536]]);
});

Deno.test("outputFor() gives the first n values of the output and rejects one too short or not f32", () => {
  const out = new Float32Array(100);
  assertStrictEquals(outputFor(out, 100, 0), out);
  const head = outputFor(out, 40, 1);
  assertEquals(head.length, 40);
  assertStrictEquals(head.buffer, out.buffer);
  assertEquals(head.byteOffset, out.byteOffset);
  const short = assertThrows(() => outputFor(out, 101, 3), RangeError);
  assertEquals(short.message, "decodeManyInto: stream 3 has 101 values but its output holds 100");
  assertThrows(() => outputFor(new Uint32Array(100), 10, 0), TypeError);
  assertThrows(() => outputFor(undefined, 10, 0), TypeError);
});
