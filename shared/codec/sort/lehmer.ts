/**
 * Permutations as Lehmer codes: digit i of a permutation of n is how many later entries are
 * smaller than entry i (0 ≤ d_i < n − i), and the digits form one mixed-radix number
 * ((d_0·(n−1) + d_1)·(n−2) + …), stored big-endian in ⌈log2 n!⌉ bits rounded up to bytes:
 * 37 bytes for n = 64 (4.6 bits an entry) instead of 48 bit-packed (6 bits an entry).
 * Reading checks that the number is below n!, so every stored code is a permutation.
 * @module
 */
import type { ByteReader, ByteWriter } from "../bytes.ts";

/** Widest row the Lehmer code is used for (the big-number arithmetic grows as n²). */
export const LEHMER_MAX_COLS = 256;

const bytesFor = new Map<number, number>();

/** Bytes of one permutation of `n`: ⌈bits(n! − 1) / 8⌉. */
export function lehmerBytes(n: number): number {
  let b = bytesFor.get(n);
  if (b === undefined) {
    let f = 1n;
    for (let i = 2n; i <= BigInt(n); i++) f *= i;
    b = Math.ceil((f - 1n).toString(2).length / 8);
    if (f === 1n) b = 0;
    bytesFor.set(n, b);
  }
  return b;
}

/** Writes each `cols`-long permutation of `perms` as its Lehmer code. */
export function writeLehmer(perms: Uint16Array, cols: number, w: ByteWriter): void {
  const nb = lehmerBytes(cols);
  const bit = new Uint8Array(cols);
  for (let off = 0; off < perms.length; off += cols) {
    bit.fill(0);
    let v = 0n;
    for (let i = 0; i < cols; i++) {
      const p = perms[off + i];
      // entries after i that are smaller than p: the smaller ones not yet used
      let d = 0;
      for (let j = 0; j < p; j++) d += 1 - bit[j];
      bit[p] = 1;
      v = v * BigInt(cols - i) + BigInt(d);
    }
    if (nb === 0) continue;
    const hex = v.toString(16).padStart(2 * nb, "0");
    w.ensure(nb);
    for (let k = 0; k < nb; k++) w.buf[w.pos++] = parseInt(hex.slice(2 * k, 2 * k + 2), 16);
  }
}

/** Reads `groups` Lehmer-coded permutations of `cols` into `perms`. */
export function readLehmer(r: ByteReader, groups: number, cols: number, perms: Uint16Array): void {
  const nb = lehmerBytes(cols);
  const start = r.pos;
  const data = r.bytes(groups * nb, "sort indices");
  const digits = new Uint16Array(cols);
  const left: number[] = [];
  for (let g = 0; g < groups; g++) {
    let hex = "0x0";
    for (let k = 0; k < nb; k++) hex += data[g * nb + k].toString(16).padStart(2, "0");
    let v = BigInt(hex);
    for (let i = cols - 1; i >= 0; i--) {
      const radix = BigInt(cols - i);
      digits[i] = Number(v % radix);
      v /= radix;
    }
    if (v !== 0n) r.fail(`Lehmer code of group ${g} is not below ${cols}!`, start + g * nb);
    left.length = 0;
    for (let j = 0; j < cols; j++) left.push(j);
    for (let i = 0; i < cols; i++) perms[g * cols + i] = left.splice(digits[i], 1)[0];
  }
}
