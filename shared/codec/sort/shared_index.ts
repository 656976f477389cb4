/**
 * Sort stage: permutes each row along its last axis (the head dimension, or a whole layer
 * row of all KV heads) so that values rise along the row, which makes them predictable.
 * One permutation is shared by each group of `k` consecutive rows (index sharing): it sorts
 * the group's column sums, so larger `k` stores fewer indices at some cost in smoothness.
 * `k = 0` is the identity (the unsorted SZ pipeline). Permutations are stored bit-packed,
 * ceil(log2 cols) bits per index, and validated as permutations on load.
 * @module
 */
import type { ByteReader, ByteWriter } from "../bytes.ts";
import { LEHMER_MAX_COLS, readLehmer, writeLehmer } from "./lehmer.ts";

/** Stage tag written before the sort metadata (bit-packed indices). */
export const SORT_TAG = 0x53; // 'S'
/** Stage tag of the same metadata with Lehmer-coded permutations (`lehmer.ts`). */
export const LEHMER_SORT_TAG = 0x54; // 'T'

/** Geometry of a frame as the predictors walk it. */
export interface Grid {
  rows: number;
  cols: number;
  /** Rows per shared permutation; 0 means no sorting. */
  k: number;
  /** `ceil(rows / k)` permutations of `cols` indices each; empty when k = 0. */
  perms: Uint16Array;
}

/** Bits per stored index for rows of `cols` values. */
export function indexBits(cols: number): number {
  return cols <= 1 ? 0 : Math.ceil(Math.log2(cols));
}

/**
 * Builds the grid: one permutation per group of `k` rows, sorting the group's column sums
 * ascending (non-finite values count as 0, ties keep column order).
 */
export function sortGrid(values: Float32Array, rows: number, cols: number, k: number): Grid {
  if (k === 0) return { rows, cols, k, perms: new Uint16Array(0) };
  if (cols > 65536) throw new RangeError(`cannot sort rows of ${cols} values (at most 65536)`);
  const groups = Math.ceil(rows / k);
  const perms = new Uint16Array(groups * cols);
  const radix = cols >= RADIX_MIN_COLS;
  const keys = new Float64Array(radix ? 0 : cols);
  const ordered = new Uint32Array(radix ? cols : 0);
  const rs = radix ? new RadixScratch(cols) : undefined;
  const sums = new Float64Array(cols);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let g = 0; g < groups; g++) {
    sums.fill(0);
    const r1 = Math.min(rows, (g + 1) * k);
    for (let r = g * k; r < r1; r++) {
      const base = r * cols;
      for (let j = 0; j < cols; j++) {
        const v = values[base + j];
        if (v - v === 0) sums[j] += v;
      }
    }
    const off = g * cols;
    for (let j = 0; j < cols; j++) {
      f[0] = sums[j];
      const b = u[0];
      const key = b & 0x80000000 ? ~b >>> 0 : (b | 0x80000000) >>> 0;
      if (radix) ordered[j] = key;
      else keys[j] = key * 65536 + j;
    }
    if (rs) {
      radixOrder(ordered, rs, perms.subarray(off, off + cols));
      continue;
    }
    sortKeys(keys, cols);
    // keys[j] % 65536 without the fmod call: the keys are integers below 2^48, so this is exact
    for (let j = 0; j < cols; j++) {
      const key = keys[j];
      perms[off + j] = key - Math.floor(key / 65536) * 65536;
    }
  }
  return { rows, cols, k, perms };
}

/** Rows at least this long are ordered by radix sort, shorter ones by {@link sortKeys}. */
const RADIX_MIN_COLS = 64;

/** Buffers for {@link radixOrder} over `n` keys. */
class RadixScratch {
  readonly keyB: Uint32Array;
  readonly idxA: Uint16Array;
  readonly idxB: Uint16Array;
  readonly count = new Int32Array(256);
  constructor(n: number) {
    this.keyB = new Uint32Array(n);
    this.idxA = new Uint16Array(n);
    this.idxB = new Uint16Array(n);
  }
}

/**
 * Writes into `out` the indices of `key` in ascending key order, equal keys by index: the
 * order {@link sortKeys} gives for `key · 2^16 + index`. A stable LSD radix sort, 8 bits a
 * pass, skipping a pass where every key has the same digit. `key` is overwritten.
 */
function radixOrder(key: Uint32Array, s: RadixScratch, out: Uint16Array): void {
  const n = key.length, count = s.count;
  let ka = key, kb = s.keyB, ia = s.idxA, ib = s.idxB;
  for (let i = 0; i < n; i++) ia[i] = i;
  for (let shift = 0; shift < 32; shift += 8) {
    count.fill(0);
    for (let i = 0; i < n; i++) count[(ka[i] >>> shift) & 255]++;
    if (count[(ka[0] >>> shift) & 255] === n) continue;
    for (let d = 0, sum = 0; d < 256; d++) {
      const c = count[d];
      count[d] = sum;
      sum += c;
    }
    for (let i = 0; i < n; i++) {
      const kv = ka[i], at = count[(kv >>> shift) & 255]++;
      kb[at] = kv;
      ib[at] = ia[i];
    }
    [ka, kb, ia, ib] = [kb, ka, ib, ia];
  }
  out.set(ia);
}

/**
 * Sorts `a[0..n)` ascending in place (the keys are distinct). Quicksort with median-of-three
 * and insertion sort below 24; several times faster than `TypedArray.prototype.sort` on the
 * short rows it sees here.
 */
export function sortKeys(a: Float64Array, n: number): void {
  const stack: number[] = [0, n - 1];
  while (stack.length) {
    let hi = stack.pop()!, lo = stack.pop()!;
    while (hi - lo >= 24) {
      const mid = (lo + hi) >>> 1;
      if (a[mid] < a[lo]) swap(a, mid, lo);
      if (a[hi] < a[lo]) swap(a, hi, lo);
      if (a[hi] < a[mid]) swap(a, hi, mid);
      const p = a[mid];
      let i = lo, j = hi;
      while (i <= j) {
        while (a[i] < p) i++;
        while (a[j] > p) j--;
        if (i <= j) swap(a, i++, j--);
      }
      if (j - lo < hi - i) {
        stack.push(i, hi);
        hi = j;
      } else {
        stack.push(lo, j);
        lo = i;
      }
    }
    for (let i = lo + 1; i <= hi; i++) {
      const v = a[i];
      let j = i - 1;
      while (j >= lo && a[j] > v) {
        a[j + 1] = a[j];
        j--;
      }
      a[j + 1] = v;
    }
  }
}

function swap(a: Float64Array, i: number, j: number): void {
  const t = a[i];
  a[i] = a[j];
  a[j] = t;
}

/**
 * Writes k and the permutations: bit-packed, or with `lehmer` (rows of 2 to
 * {@link LEHMER_MAX_COLS} values) as Lehmer codes under their own tag.
 */
export function saveSort(g: Grid, w: ByteWriter, opts: { lehmer?: boolean } = {}): void {
  if (opts.lehmer && g.k > 0 && g.cols >= 2 && g.cols <= LEHMER_MAX_COLS) {
    w.u8(LEHMER_SORT_TAG);
    w.varint(g.k);
    writeLehmer(g.perms, g.cols, w);
    return;
  }
  w.u8(SORT_TAG);
  w.varint(g.k);
  const b = indexBits(g.cols);
  if (g.k === 0 || b === 0) return;
  const nbytes = Math.ceil((g.perms.length * b) / 8);
  w.ensure(nbytes);
  const out = w.buf;
  let pos = w.pos, acc = 0, nb = 0;
  for (let i = 0; i < g.perms.length; i++) {
    acc = (acc << b) | g.perms[i];
    nb += b;
    while (nb >= 8) {
      nb -= 8;
      out[pos++] = acc >>> nb;
    }
    acc &= (1 << nb) - 1;
  }
  if (nb > 0) out[pos++] = acc << (8 - nb);
  w.pos = pos;
}

/** Reads what {@link saveSort} wrote and checks each permutation. */
export function loadSort(r: ByteReader, rows: number, cols: number): Grid {
  const tagAt = r.pos;
  const lehmer = r.pos < r.end && r.buf[r.pos] === LEHMER_SORT_TAG;
  r.tag(lehmer ? LEHMER_SORT_TAG : SORT_TAG, "sort");
  const at = r.pos;
  const k = r.varint("index sharing k", Math.max(rows, 1));
  if (k === 0) {
    if (lehmer) r.fail("Lehmer-coded sort stage without a sort", tagAt);
    return { rows, cols, k, perms: new Uint16Array(0) };
  }
  if (cols > 65536) r.fail(`sorted rows of ${cols} values`, at);
  const groups = Math.ceil(rows / k);
  const perms = new Uint16Array(groups * cols);
  if (lehmer) {
    if (cols < 2 || cols > LEHMER_MAX_COLS) r.fail(`Lehmer-coded rows of ${cols} values`, tagAt);
    readLehmer(r, groups, cols, perms);
    return { rows, cols, k, perms };
  }
  const b = indexBits(cols);
  if (b === 0) return { rows, cols, k, perms };
  const start = r.pos;
  const data = r.bytes(Math.ceil((perms.length * b) / 8), "sort indices");
  const mask = (1 << b) - 1;
  const seen = new Int32Array(cols).fill(-1);
  let acc = 0, nb = 0, pos = 0;
  for (let i = 0; i < perms.length; i++) {
    while (nb < b) {
      acc = ((acc << 8) | data[pos++]) & 0xffffff;
      nb += 8;
    }
    nb -= b;
    const v = (acc >>> nb) & mask;
    const group = (i / cols) | 0;
    if (v >= cols || seen[v] === group) {
      r.fail(`sort index ${v} repeated or out of range in group ${group}`, start);
    }
    seen[v] = group;
    perms[i] = v;
  }
  return { rows, cols, k, perms };
}
