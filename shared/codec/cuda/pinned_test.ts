/**
 * HostRegistry with a stand-in for the library (no GPU needed): a buffer is registered the
 * second time a call uses it (at once when the caller says it keeps it), held until released,
 * released least recently used first and only when the room is needed, never one the call in
 * hand uses; small buffers and refused ones stay pageable.
 */
import { assertEquals } from "@std/assert";
import type { CudaSymbols } from "./library.ts";
import { HostRegistry } from "./pinned.ts";

const MiB = 2 ** 20;

/** A library that records (un)registrations by buffer size, and refuses sizes in `refuse`. */
function fakeLibrary(refuse = new Set<number>()) {
  const log: string[] = [];
  const symbols = {
    kvr_cuda_host_register: (_p: Deno.PointerValue, bytes: bigint) => {
      if (refuse.has(Number(bytes))) return -1;
      log.push(`+${Number(bytes) / MiB}`);
      return 0;
    },
    kvr_cuda_host_unregister: (p: Deno.PointerValue) => {
      log.push(`-${sizes.get(Deno.UnsafePointer.value(p)) ?? "?"}`);
      return 0;
    },
  } as unknown as CudaSymbols;
  const sizes = new Map<number | bigint, number>();
  /** A buffer of `mib` MiB whose address the log can name. */
  const buffer = (mib: number) => {
    const b = new Float32Array((mib * MiB) / 4);
    sizes.set(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)), mib);
    return b;
  };
  return { symbols, log, buffer };
}

Deno.test("HostRegistry registers a buffer the second time a call uses it, once, and holds it; small ones stay pageable", () => {
  const { symbols, log, buffer } = fakeLibrary();
  const r = new HostRegistry(symbols, MiB, 64 * MiB);
  const a = buffer(4), small = new Float32Array(100);
  assertEquals(r.forCall([a, a.subarray(10), small]), [false, false, false]); // first use: pageable
  assertEquals(log, []);
  assertEquals(r.forCall([a, a.subarray(10), small]), [true, true, false]);
  assertEquals(r.forCall([a]), [true]);
  assertEquals(log, ["+4"]);
  assertEquals([r.registeredBytes, r.heldBuffers], [4 * MiB, 1]);
});

Deno.test("HostRegistry leaves buffers used once pageable and unheld (a request's fresh KV), and registers at once when asked", () => {
  const { symbols, log, buffer } = fakeLibrary();
  const r = new HostRegistry(symbols, MiB, 64 * MiB);
  for (let i = 0; i < 5; i++) assertEquals(r.forCall([buffer(4), buffer(4)]), [false, false]);
  assertEquals([log.length, r.heldBuffers, r.registeredBytes], [0, 0, 0]);
  const pool = buffer(4);
  assertEquals(r.forCall([pool], true), [true]); // an output the caller keeps
  assertEquals(log, ["+4"]);
});

Deno.test("HostRegistry page-locks an f16 frame's Uint16Array buffer as it does a Float32Array's", () => {
  const { symbols, log } = fakeLibrary();
  const r = new HostRegistry(symbols, MiB, 64 * MiB);
  const halves = new Uint16Array(2 * MiB);
  assertEquals(r.forCall([halves, halves.subarray(7)], true), [true, true]);
  assertEquals(log, ["+4"]);
  assertEquals(r.registeredBytes, 4 * MiB);
});

Deno.test("HostRegistry releases the least recently used buffers for room, never one of the call in hand", () => {
  const { symbols, log, buffer } = fakeLibrary();
  const r = new HostRegistry(symbols, MiB, 10 * MiB);
  const [a, b, c] = [buffer(4), buffer(4), buffer(2)];
  r.forCall([a], true);
  r.forCall([b], true);
  r.forCall([a]); // a used last: b is now the oldest
  assertEquals(r.forCall([c], true), [true]); // 10 MiB: fits without a release
  const d = buffer(4);
  assertEquals(r.forCall([d], true), [true]); // releases b (oldest), not a or c
  assertEquals(log, ["+4", "+4", "+2", "-4", "+4"]);
  // a call that needs more than the others can give: what is in the call stays, the rest as room allows
  const e = buffer(8);
  assertEquals(r.forCall([a, c, d, e], true), [true, true, true, false]);
  assertEquals(r.registeredBytes, 10 * MiB);
  r.releaseAll();
  assertEquals(r.registeredBytes, 0);
  assertEquals(r.heldBuffers, 0);
});

Deno.test("HostRegistry leaves a buffer it could not register pageable, and does not try it again", () => {
  const { symbols, log, buffer } = fakeLibrary(new Set([3 * MiB]));
  const r = new HostRegistry(symbols, MiB, 64 * MiB);
  const a = buffer(3);
  assertEquals(r.forCall([a], true), [false]);
  assertEquals(r.forCall([a], true), [false]);
  assertEquals([r.failures, log.length], [1, 0]);
});
