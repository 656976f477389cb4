import { assertEquals, assertThrows } from "@std/assert";
import { ByteReader, ByteWriter } from "../bytes.ts";
import { CorruptStreamError } from "../errors.ts";
import { rng } from "../testdata/gen.ts";
import { lehmerBytes, readLehmer, writeLehmer } from "./lehmer.ts";

function shuffled(n: number, r: () => number): number[] {
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

Deno.test("writeLehmer() round-trips permutations in ⌈log2 n!⌉ bits a permutation", () => {
  assertEquals([lehmerBytes(2), lehmerBytes(8), lehmerBytes(64), lehmerBytes(128)], [1, 2, 37, 90]);
  const r = rng(5);
  for (const n of [2, 3, 8, 17, 64, 128]) {
    const groups = 5;
    const perms = Array.from({ length: groups }, () => shuffled(n, r)).flat();
    const identity = Array.from({ length: n }, (_, i) => i), reversed = [...identity].reverse();
    const all = Uint16Array.from([...perms, ...identity, ...reversed]);
    const w = new ByteWriter();
    writeLehmer(all, n, w);
    assertEquals(w.pos, (groups + 2) * lehmerBytes(n));
    const back = new Uint16Array(all.length);
    readLehmer(new ByteReader(w.finish()), groups + 2, n, back);
    assertEquals(back, all);
  }
});

Deno.test("readLehmer() rejects a code of n! or more", () => {
  // 3 values: 3! = 6 codes, one byte each; 6 and 255 are not permutations
  for (const bad of [6, 255]) {
    assertThrows(
      () => readLehmer(new ByteReader(new Uint8Array([bad])), 1, 3, new Uint16Array(3)),
      CorruptStreamError,
    );
  }
  assertThrows(
    () => readLehmer(new ByteReader(new Uint8Array(36)), 1, 64, new Uint16Array(64)),
    CorruptStreamError,
  );
});
