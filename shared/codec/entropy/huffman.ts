/**
 * Entropy stage: canonical Huffman over 16-bit quantization symbols. The table is stored
 * as (symbol delta, code length) pairs; codes are at most {@link MAX_CODE_LEN} bits (the
 * frequencies are flattened until they fit) and decoded with a lookup table of up to 12
 * bits (two symbols per lookup where both fit) plus a canonical slow path for longer codes.
 * A frame with a single distinct symbol costs no bits at all. Decoding validates the table
 * (lengths in range, Kraft sum ≤ 1, symbols increasing) and the bit count, so hostile input
 * ends in `CorruptStreamError`.
 * @module
 */
import type { ByteReader, ByteWriter } from "../bytes.ts";
import { scratchI32 } from "../scratch.ts";

/** Stage tag written before the entropy metadata. */
export const HUFFMAN_TAG = 0x48; // 'H'
/** Longest code the encoder emits and the decoder accepts. */
export const MAX_CODE_LEN = 24;
const LUT_BITS = 12;

/** Code lengths for each symbol with a non-zero count (dense over `freq`'s indices). */
export function huffmanLengths(freq: Uint32Array, maxLen = MAX_CODE_LEN): Uint8Array {
  const lens = new Uint8Array(freq.length);
  const present: number[] = [];
  for (let s = 0; s < freq.length; s++) if (freq[s] > 0) present.push(s);
  if (present.length === 1) return lens; // one symbol: length 0, no bits
  let f = present.map((s) => freq[s]);
  for (;;) {
    const depth = treeDepths(f);
    let max = 0;
    for (const d of depth) max = Math.max(max, d);
    if (max <= maxLen) {
      present.forEach((s, i) => lens[s] = depth[i]);
      return lens;
    }
    f = f.map((x) => (x >>> 1) | 1);
  }
}

/** Depth of each leaf in a Huffman tree over the weights (two-queue construction). */
function treeDepths(weights: number[]): number[] {
  const m = weights.length;
  const order = byWeight(weights);
  const w = new Float64Array(2 * m);
  const parent = new Int32Array(2 * m).fill(-1);
  for (let i = 0; i < m; i++) w[i] = weights[order[i]];
  let leaf = 0, inner = m, next = m;
  const pick = (): number => {
    if (leaf < m && (inner >= next || w[leaf] <= w[inner])) return leaf++;
    return inner++;
  };
  while (next < 2 * m - 1) {
    const a = pick(), b = pick();
    w[next] = w[a] + w[b];
    parent[a] = parent[b] = next;
    next++;
  }
  const depthOf = new Int32Array(2 * m);
  for (let i = 2 * m - 3; i >= 0; i--) depthOf[i] = depthOf[parent[i]] + 1;
  const depth = new Array<number>(m);
  for (let i = 0; i < m; i++) depth[order[i]] = depthOf[i];
  return depth;
}

/**
 * Indices of `weights` ordered by weight, then index. The weights are integer counts, so
 * `weight · 2^16 + index` (below 2^53) is a key that sorts the same way, as numbers.
 */
function byWeight(weights: number[]): Int32Array {
  const m = weights.length;
  if (m > 65536 || !weights.every((w) => Number.isInteger(w) && w >= 0 && w < 2 ** 36)) {
    return Int32Array.from(weights.map((_, i) => i).sort((a, b) => weights[a] - weights[b] || a - b));
  }
  const keys = new Float64Array(m);
  for (let i = 0; i < m; i++) keys[i] = weights[i] * 65536 + i;
  keys.sort();
  const order = new Int32Array(m);
  for (let i = 0; i < m; i++) {
    const key = keys[i];
    order[i] = key - Math.floor(key / 65536) * 65536;
  }
  return order;
}

/**
 * Indices of the symbols in canonical order: shorter code first, then by symbol. Symbols
 * that arrive ascending (as stored, and as the encoder lists them) are bucketed by length.
 */
function canonicalOrder(syms: Uint32Array, lens: Uint8Array): Int32Array {
  const m = syms.length;
  let ascending = true;
  for (let i = 1; i < m && ascending; i++) ascending = syms[i] > syms[i - 1];
  if (!ascending) {
    return Int32Array.from([...syms.keys()].sort((a, b) => lens[a] - lens[b] || syms[a] - syms[b]));
  }
  const start = new Int32Array(257);
  for (let i = 0; i < m; i++) start[lens[i] + 1]++;
  for (let l = 1; l < 257; l++) start[l] += start[l - 1];
  const order = new Int32Array(m);
  for (let i = 0; i < m; i++) order[start[lens[i]]++] = i;
  return order;
}

/** Canonical codes for the lengths, given their canonical order. */
function codesInOrder(order: Int32Array, lens: Uint8Array): Uint32Array {
  const codes = new Uint32Array(order.length);
  let code = 0, prevLen = 0;
  for (const i of order) {
    code = code * 2 ** (lens[i] - prevLen);
    codes[i] = code;
    prevLen = lens[i];
    code++;
  }
  return codes;
}

/** Canonical codes for the lengths: shorter first, then by symbol. */
export function canonicalCodes(syms: Uint32Array, lens: Uint8Array): Uint32Array {
  return codesInOrder(canonicalOrder(syms, lens), lens);
}

/** A Huffman table over the symbols `lo + s` for the offsets `s` whose frequency is not 0. */
export interface HuffmanTable {
  /** The symbol at offset 0. */
  lo: number;
  /** Offsets of the symbols that occur, ascending. */
  present: number[];
  /** Code length per offset (0 where the symbol does not occur). */
  lens: Uint8Array;
  /** Length of the bitstream. */
  bits: number;
}

/** The table for the frequencies `freq` of the symbols `lo`, `lo + 1`, ... (at least one not 0). */
export function huffmanTable(freq: Uint32Array, lo: number): HuffmanTable {
  const lens = huffmanLengths(freq);
  const present: number[] = [];
  for (let s = 0; s < freq.length; s++) if (freq[s] > 0) present.push(s);
  let bits = 0;
  for (const s of present) bits += freq[s] * lens[s];
  return { lo, present, lens, bits };
}

/** Canonical codes of the table's present symbols, in the order of `present`. */
export function tableCodes(t: HuffmanTable): Uint32Array {
  const m = t.present.length;
  const syms = new Uint32Array(m), lens = new Uint8Array(m);
  for (let i = 0; i < m; i++) {
    syms[i] = t.present[i] + t.lo;
    lens[i] = t.lens[t.present[i]];
  }
  return canonicalCodes(syms, lens);
}

/** Writes the stage up to its bitstream: tag, table (symbol gaps and lengths), bit length. */
export function writeHuffmanTable(t: HuffmanTable, w: ByteWriter): void {
  w.u8(HUFFMAN_TAG);
  w.varint(t.present.length);
  let prev = -1;
  for (const s of t.present) {
    w.varint(s + t.lo - prev - 1);
    w.u8(t.lens[s]);
    prev = s + t.lo;
  }
  w.varint(t.bits);
}

const NO_SYMBOLS: HuffmanTable = { lo: 0, present: [], lens: new Uint8Array(0), bits: 0 };

/** Huffman-codes `syms` into `w`: table, bit length, then the MSB-first bitstream. */
export function huffmanEncode(syms: Uint16Array, w: ByteWriter): void {
  const n = syms.length;
  let lo = 65535, hi = 0;
  for (let i = 0; i < n; i++) {
    const s = syms[i];
    if (s < lo) lo = s;
    if (s > hi) hi = s;
  }
  if (n === 0) {
    writeHuffmanTable(NO_SYMBOLS, w);
    return;
  }
  const freq = new Uint32Array(hi - lo + 1);
  for (let i = 0; i < n; i++) freq[syms[i] - lo]++;
  const table = huffmanTable(freq, lo);
  writeHuffmanTable(table, w);
  if (table.bits === 0) return;
  const codes = tableCodes(table);
  const codeOf = new Int32Array(freq.length);
  table.present.forEach((s, i) => codeOf[s] = codes[i]);
  w.ensure(Math.ceil(table.bits / 8));
  w.pos = writeBits(syms, lo, codeOf, table.lens, table.bits, w.buf, w.pos);
}

/**
 * The bitstream, MSB first, built in big-endian 32-bit words and then stored as bytes. Each
 * code (at most 24 bits, left-aligned) is OR-ed into the word at the bit position and its
 * spill, if any, written as the next word, so the loop has no branch on where a word ends:
 * the word at the position always holds the bits so far followed by zeros.
 */
function writeBits(
  syms: Uint16Array,
  lo: number,
  codeOf: Int32Array,
  lenOf: Uint8Array,
  bits: number,
  out: Uint8Array,
  pos: number,
): number {
  const n = syms.length;
  const W = scratchI32("huffman.enc", (bits >>> 5) + 2);
  W[0] = 0;
  let bp = 0;
  for (let i = 0; i < n; i++) {
    const s = syms[i] - lo;
    const len = lenOf[s];
    const c = codeOf[s] << (32 - len);
    const w = bp >>> 5, o = bp & 31;
    W[w] |= c >>> o;
    W[w + 1] = (c << (31 - o)) << 1; // the bits past the word (0 when none; o may be 0)
    bp += len;
  }
  const nbytes = (bp + 7) >>> 3, full = nbytes >>> 2;
  for (let i = 0; i < full; i++, pos += 4) {
    const v = W[i];
    out[pos] = v >>> 24;
    out[pos + 1] = v >>> 16;
    out[pos + 2] = v >>> 8;
    out[pos + 3] = v;
  }
  for (let k = 0, v = W[full]; k < (nbytes & 3); k++) out[pos++] = v >>> (24 - 8 * k);
  return pos;
}

/** Byte counts of the entropy stage's parts, for `inspect`. */
export interface HuffmanInfo {
  tableBytes: number;
  bitstreamBytes: number;
  distinctSymbols: number;
}

/** Decodes `n` symbols written by {@link huffmanEncode} (into `into` when given). */
export function huffmanDecode(r: ByteReader, n: number, info?: HuffmanInfo, into?: Uint16Array): Uint16Array {
  const start = r.pos;
  r.tag(HUFFMAN_TAG, "entropy");
  const m = r.varint("symbol count", 65536);
  const out = into?.length === n ? into : new Uint16Array(n);
  if (m === 0) {
    if (n !== 0) r.fail(`empty code table for ${n} symbols`);
    r.varint("bit length", 0);
    return out;
  }
  const syms = new Uint32Array(m);
  const lens = new Uint8Array(m);
  let prev = -1, kraft = 0, minLen = 99, maxLen = 0;
  for (let i = 0; i < m; i++) {
    const s = prev + 1 + r.varint("symbol delta", 65535);
    const at = r.pos;
    const len = r.u8("code length");
    if (s > 65535) r.fail(`symbol ${s} out of range`, at);
    if (m === 1 ? len !== 0 : len < 1 || len > MAX_CODE_LEN) r.fail(`bad code length ${len}`, at);
    syms[i] = s;
    lens[i] = len;
    prev = s;
    if (len > 0) kraft += 2 ** -len;
    minLen = Math.min(minLen, len);
    maxLen = Math.max(maxLen, len);
  }
  if (kraft > 1) r.fail("over-subscribed code table");
  const bitsAt = r.pos;
  const bits = r.varint("bit length");
  if (m === 1 ? bits !== 0 : bits < n * minLen || bits > n * maxLen) {
    r.fail(`bit length ${bits} impossible for ${n} symbols`, bitsAt);
  }
  const nbytes = Math.ceil(bits / 8);
  const tableBytes = r.pos - start;
  const data = r.bytes(nbytes, "huffman bitstream");
  if (info) Object.assign(info, { tableBytes, bitstreamBytes: nbytes, distinctSymbols: m });
  if (m === 1) return out.fill(syms[0]);
  decodeBits(data, bits, n, syms, lens, maxLen, out, r);
  return out;
}

function decodeBits(
  data: Uint8Array,
  bits: number,
  n: number,
  syms: Uint32Array,
  lens: Uint8Array,
  maxLen: number,
  out: Uint16Array,
  r: ByteReader,
): void {
  const m = syms.length;
  const byCode = canonicalOrder(syms, lens);
  const codes = codesInOrder(byCode, lens);
  // a table about a quarter the size of the frame (a small frame would spend more on the
  // table than on its symbols), at least 8 bits, at most LUT_BITS
  const L = Math.min(LUT_BITS, maxLen, Math.max(8, 29 - Math.clz32(n)));
  // lookup on the next L bits: the symbols `pair` (first in the low half) and `meta` =
  // count << 10 | first length << 5 | total length; count 0 sends the code to the slow path
  const size = 1 << L;
  const pair = scratchI32("huffman.pair", size);
  const meta = new Uint16Array(size);
  // canonical tables for the slow path
  const firstCode = new Float64Array(MAX_CODE_LEN + 2);
  const firstIdx = new Int32Array(MAX_CODE_LEN + 2);
  const count = new Int32Array(MAX_CODE_LEN + 2);
  for (let j = m - 1; j >= 0; j--) {
    const i = byCode[j], len = lens[i];
    count[len]++;
    firstIdx[len] = j;
    firstCode[len] = codes[i];
    if (len <= L) {
      const base = codes[i] << (L - len);
      pair.fill(syms[i], base, base + (1 << (L - len)));
      meta.fill((1 << 10) | (len << 5) | len, base, base + (1 << (L - len)));
    }
  }
  // a second whole code in the rest of the window: worth the table pass on large frames only
  if (n >= 4 * size) {
    for (let w = 0; w < size; w++) {
      const m0 = meta[w];
      if (m0 === 0) continue;
      const l0 = m0 & 31, rest = (w << l0) & (size - 1), m1 = meta[rest], l1 = m1 & 31;
      if (m1 >>> 10 === 1 && l0 + l1 <= L) {
        pair[w] = (pair[w] & 0xffff) | (pair[rest] << 16);
        meta[w] = (2 << 10) | (l0 << 5) | (l0 + l1);
      }
    }
  }
  // the bitstream as big-endian 32-bit words, two zero words of padding: a 32-bit window
  // at any bit position up to `bits` + 32 reads in bounds (zeros past the end)
  const nw = (data.length + 3) >>> 2;
  const full = data.length >>> 2;
  const W = scratchI32("huffman.words", nw + 2);
  W[full] = W[nw] = W[nw + 1] = 0;
  for (let i = 0, p = 0; i < full; i++, p += 4) {
    W[i] = (data[p] << 24) | (data[p + 1] << 16) | (data[p + 2] << 8) | data[p + 3];
  }
  for (let p = full * 4; p < data.length; p++) W[full] |= data[p] << (24 - 8 * (p - full * 4));
  const shift = 32 - L;
  let bp = 0, i = 0;
  // two symbols at a time where the window holds them; out[i + 1] is overwritten by the next
  // step when only one was decoded, and the last symbol is left to the single-symbol loop
  while (i < n - 1) {
    const wi = bp >>> 5, o = bp & 31;
    const win = (W[wi] << o) | ((W[wi + 1] >>> 1) >>> (31 - o));
    const w = win >>> shift, e = meta[w];
    if (e !== 0) {
      const p = pair[w];
      out[i] = p;
      out[i + 1] = p >>> 16;
      bp += e & 31;
      i += e >>> 10;
    } else {
      const sl = slowSymbol(win, L, maxLen, firstCode, firstIdx, count, byCode, syms, i, r);
      out[i++] = sl >>> 5;
      bp += sl & 31;
    }
    if (bp > bits) r.fail(`Huffman bitstream overran its ${bits} bits`);
  }
  for (; i < n; i++) {
    const wi = bp >>> 5, o = bp & 31;
    const win = (W[wi] << o) | ((W[wi + 1] >>> 1) >>> (31 - o));
    const e = meta[win >>> shift];
    if (e !== 0) {
      out[i] = pair[win >>> shift];
      bp += (e >>> 5) & 31;
    } else {
      const sl = slowSymbol(win, L, maxLen, firstCode, firstIdx, count, byCode, syms, i, r);
      out[i] = sl >>> 5;
      bp += sl & 31;
    }
    if (bp > bits) r.fail(`Huffman bitstream overran its ${bits} bits`);
  }
}

/** A code longer than the lookup's L bits, by the canonical tables: `symbol << 5 | length`. */
function slowSymbol(
  win: number,
  L: number,
  maxLen: number,
  firstCode: Float64Array,
  firstIdx: Int32Array,
  count: Int32Array,
  byCode: Int32Array,
  syms: Uint32Array,
  i: number,
  r: ByteReader,
): number {
  for (let len = L + 1; len <= maxLen; len++) {
    const off = (win >>> (32 - len)) - firstCode[len];
    if (count[len] > 0 && off >= 0 && off < count[len]) {
      return (syms[byCode[firstIdx[len] + off]] << 5) | len;
    }
  }
  return r.fail(`invalid Huffman code at symbol ${i}`);
}
