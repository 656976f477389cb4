/**
 * WGSL sources of the GPU codec, one compute entry point each. Every kernel reads the
 * same `Params` uniform; big dispatches are 2-D (x ≤ 65535) and kernels linearise the
 * workgroup id. Inputs of fp16/bf16 frames are packed two per u32 (little-endian halves).
 *
 * Encode: `stats` (finite min/max) → `sort` (one shared permutation per k rows) →
 * `quantize` (bins, symbols, output bits, exceptions, histogram) → `huffCount` /
 * `huffScan` / `huffWrite` (Huffman bitstream). Decode: `decRows` (bins from symbols, a
 * segmented prefix sum per row) → `decMap` (bins to output bits through the bin table).
 * @module
 */
import { SUM64 } from "./sum64.ts";

/** Uniform block shared by every kernel (16 words). */
export const PARAMS_WORDS = 16;

const PRELUDE = /* wgsl */ `
struct Params {
  n: u32, rows: u32, cols: u32, k: u32,
  dtype: u32, tabSize: u32, lo: i32, excCap: u32,
  invF: f32, sortSize: u32, nBlocks: u32, nExc: u32,
  pad0: u32, pad1: u32, pad2: u32, pad3: u32,
}
@group(0) @binding(0) var<uniform> P: Params;
const R: i32 = 32768;

fn wgIndex(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.y * nwg.x + wid.x; }
fn okey(b: u32) -> u32 { if ((b & 0x80000000u) != 0u) { return ~b; } return b | 0x80000000u; }
fn finiteBits(b: u32) -> bool { return (b & 0x7f800000u) != 0x7f800000u; }
fn bswap(x: u32) -> u32 {
  return (x >> 24u) | ((x >> 8u) & 0xff00u) | ((x << 8u) & 0xff0000u) | (x << 24u);
}
fn f16to32(h: u32) -> u32 {
  let s = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  if (e == 0x1fu) { return s | 0x7f800000u | (m << 13u); }
  if (e == 0u) {
    if (m == 0u) { return s; }
    let p = firstLeadingBit(m);
    return s | ((p + 103u) << 23u) | ((m << (23u - p)) & 0x7fffffu);
  }
  return s | ((e + 112u) << 23u) | (m << 13u);
}
`;

const INPUT = /* wgsl */ `
// storage bits of element i (fp32 bits, or the fp16/bf16 pattern)
fn rawAt(i: u32) -> u32 {
  if (P.dtype == 0u) { return inp[i]; }
  return (inp[i >> 1u] >> ((i & 1u) * 16u)) & 0xffffu;
}
// element i as fp32 bits (exact for every dtype)
fn bitsAt(i: u32) -> u32 {
  let r = rawAt(i);
  if (P.dtype == 0u) { return r; }
  if (P.dtype == 2u) { return r << 16u; }
  return f16to32(r);
}
`;

/** Finite min and max of the frame, as ordered keys (atomic over workgroups). */
export const STATS = PRELUDE + /* wgsl */ `
@group(0) @binding(1) var<storage, read> inp: array<u32>;
@group(0) @binding(2) var<storage, read_write> mm: array<atomic<u32>, 2>;
var<workgroup> wmin: atomic<u32>;
var<workgroup> wmax: atomic<u32>;
${INPUT}
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  if (lid == 0u) { atomicStore(&wmin, 0xffffffffu); atomicStore(&wmax, 0u); }
  workgroupBarrier();
  let base = wgIndex(wid, nwg) * 4096u;
  var lo = 0xffffffffu;
  var hi = 0u;
  for (var s = 0u; s < 16u; s++) {
    let i = base + s * 256u + lid;
    if (i < P.n) {
      let b = bitsAt(i);
      if (finiteBits(b)) { let kk = okey(b); lo = min(lo, kk); hi = max(hi, kk); }
    }
  }
  atomicMin(&wmin, lo);
  atomicMax(&wmax, hi);
  workgroupBarrier();
  if (lid == 0u) { atomicMin(&mm[0], atomicLoad(&wmin)); atomicMax(&mm[1], atomicLoad(&wmax)); }
}
`;

/**
 * One workgroup per group of k rows: the CPU's column sums (finite values added in row
 * order into an emulated Float64, rounded to fp32 — sum64.ts, integers only), then a
 * bitonic sort of (ordered key of the sum, column) in workgroup memory, ascending: the
 * CPU's key, unique per column, so the permutation is the CPU's on any conforming GPU,
 * whatever its float arithmetic does with subnormals or rounding.
 */
export const SORT = PRELUDE + SUM64 + /* wgsl */ `
@group(0) @binding(1) var<storage, read> inp: array<u32>;
@group(0) @binding(2) var<storage, read_write> perms: array<u32>;
var<workgroup> kh: array<u32, 1024>;
var<workgroup> kl: array<u32, 1024>;
${INPUT}
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = wgIndex(wid, nwg);
  let groups = (P.rows + P.k - 1u) / P.k;
  if (g >= groups) { return; }
  let r0 = g * P.k;
  let r1 = min(P.rows, r0 + P.k);
  for (var j = lid; j < P.sortSize; j += 256u) {
    var key = 0xffffffffu;
    if (j < P.cols) {
      var acc = d64Zero();
      for (var r = r0; r < r1; r++) {
        let b = bitsAt(r * P.cols + j);
        // ±0 adds nothing (the sum starts at +0); non-finite values count as 0
        if (finiteBits(b) && (b & 0x7fffffffu) != 0u) { acc = d64Add(acc, d64FromF32(b)); }
      }
      key = okey(d64ToF32(acc));
    }
    kh[j] = key;
    kl[j] = j;
  }
  workgroupBarrier();
  for (var kk = 2u; kk <= P.sortSize; kk <<= 1u) {
    for (var jj = kk >> 1u; jj > 0u; jj >>= 1u) {
      for (var i = lid; i < P.sortSize; i += 256u) {
        let l = i ^ jj;
        if (l > i) {
          let a = kh[i];
          let b = kh[l];
          let al = kl[i];
          let bl = kl[l];
          let gt = a > b || (a == b && al > bl);
          if (gt == ((i & kk) == 0u)) { kh[i] = b; kh[l] = a; kl[i] = bl; kl[l] = al; }
        }
      }
      workgroupBarrier();
    }
  }
  for (var j = lid; j < P.cols; j += 256u) { perms[g * P.cols + j] = kl[j]; }
}
`;

/**
 * Quantize-first, exactly as the CPU's qfirst encoder decides: bin and bound come from the
 * ordered-key thresholds of tables.ts (integer comparisons only). One thread per two sorted
 * positions, 4096 positions per workgroup; symbols packed two per u32 in sorted row-major
 * order; output bits scattered to original order (reconstruction, or the input's exact bits
 * for an exception); exceptions appended as (position, index) pairs; the histogram counts
 * symbols near the centre in workgroup memory first. hist[65536] is the exception counter.
 */
export const QUANTIZE = PRELUDE + /* wgsl */ `
@group(0) @binding(1) var<storage, read> inp: array<u32>;
@group(0) @binding(2) var<storage, read> perms: array<u32>;
@group(0) @binding(3) var<storage, read> tab: array<u32>;
@group(0) @binding(4) var<storage, read_write> syms: array<u32>;
@group(0) @binding(5) var<storage, read_write> outb: array<atomic<u32>>;
@group(0) @binding(6) var<storage, read_write> hist: array<atomic<u32>>;
@group(0) @binding(7) var<storage, read_write> exc: array<u32>;
const WLO: u32 = 31744u;
const WSIZE: u32 = 2048u;
var<workgroup> wh: array<atomic<u32>, 2048>;
${INPUT}
fn origIdx(p: u32) -> u32 {
  if (P.k == 0u) { return p; }
  let i = p / P.cols;
  let j = p - i * P.cols;
  return i * P.cols + perms[(i / P.k) * P.cols + j];
}
// bin index t in the table (-1: none, the value is an exception with chain bin 0)
fn binIndex(b: u32) -> i32 {
  if (!finiteBits(b)) { return -1; }
  let key = okey(b);
  let size = P.tabSize;
  if (key < tab[0] || key >= tab[size]) { return -1; }
  let y = floor(bitcast<f32>(b) * P.invF + 0.5) - f32(P.lo);
  // a guess only (float rounding may differ by GPU): clamped as an integer, then corrected exactly
  var t = min(u32(clamp(y, 0.0, f32(size - 1u))), size - 1u);
  for (var s = 0u; s < 3u; s++) {
    if (key < tab[t]) { t -= 1u; } else if (key >= tab[t + 1u]) { t += 1u; } else { return i32(t); }
  }
  if (key >= tab[t] && key < tab[t + 1u]) { return i32(t); }
  var a = 0u;
  var z = size;
  while (z - a > 1u) {
    let m = (a + z) >> 1u;
    if (tab[m] <= key) { a = m; } else { z = m; }
  }
  return i32(a);
}
fn chainBin(t: i32) -> i32 { if (t < 0) { return 0; } return P.lo + t; }
fn store(idx: u32, v: u32) {
  if (P.dtype == 0u) { atomicStore(&outb[idx], v); }
  else { atomicOr(&outb[idx >> 1u], (v & 0xffffu) << ((idx & 1u) * 16u)); }
}
fn quant(p: u32) -> u32 {
  let i = p / P.cols;
  let j = p - i * P.cols;
  let idx = origIdx(p);
  let b = bitsAt(idx);
  let t = binIndex(b);
  var qp = 0;
  if (j > 0u) { qp = chainBin(binIndex(bitsAt(origIdx(p - 1u)))); }
  else if (i > 0u) { qp = chainBin(binIndex(bitsAt(origIdx(p - P.cols)))); }
  var sym = 0u;
  let size = P.tabSize;
  if (t >= 0) {
    let code = chainBin(t) - qp;
    let key = okey(b);
    let ut = u32(t);
    if (code > -R && code < R && key >= tab[size + 1u + ut] && key <= tab[2u * size + 1u + ut]
        && b != 0x80000000u) {
      sym = u32(code + R);
      store(idx, tab[3u * size + 1u + ut]);
    }
  }
  if (sym == 0u) {
    store(idx, rawAt(idx));
    let slot = atomicAdd(&hist[65536], 1u);
    if (slot < P.excCap) { exc[2u * slot] = p; exc[2u * slot + 1u] = idx; }
  }
  return sym;
}
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = lid; i < WSIZE; i += 256u) { atomicStore(&wh[i], 0u); }
  workgroupBarrier();
  let base = wgIndex(wid, nwg) * 2048u;
  for (var s = 0u; s < 8u; s++) {
    let w = base + s * 256u + lid;
    var packed = 0u;
    for (var h = 0u; h < 2u; h++) {
      let p = 2u * w + h;
      if (p < P.n) {
        let sym = quant(p);
        packed |= sym << (16u * h);
        if (sym >= WLO && sym < WLO + WSIZE) { atomicAdd(&wh[sym - WLO], 1u); }
        else { atomicAdd(&hist[sym], 1u); }
      }
    }
    if (2u * w < P.n) { syms[w] = packed; }
  }
  workgroupBarrier();
  for (var i = lid; i < WSIZE; i += 256u) {
    let c = atomicLoad(&wh[i]);
    if (c != 0u) { atomicAdd(&hist[i + WLO], c); }
  }
}
`;

/** 256 partial sums in workgroup memory and their inclusive scan (Hillis-Steele). */
const SCAN_PART = /* wgsl */ `
var<workgroup> part: array<u32, 256>;
fn scanPart(lid: u32) {
  for (var off = 1u; off < 256u; off <<= 1u) {
    var v = 0u;
    if (lid >= off) { v = part[lid - off]; }
    workgroupBarrier();
    part[lid] += v;
    workgroupBarrier();
  }
}
`;

const HUFF = SCAN_PART + /* wgsl */ `
@group(0) @binding(1) var<storage, read> syms: array<u32>;
@group(0) @binding(2) var<storage, read> ct: array<u32>;
fn symAt(p: u32) -> u32 { return (syms[p >> 1u] >> ((p & 1u) * 16u)) & 0xffffu; }
// bits of the 16 symbols thread lid of block b codes
fn threadBits(b: u32, lid: u32) -> u32 {
  var sum = 0u;
  let p0 = b * 4096u + lid * 16u;
  for (var e = 0u; e < 16u; e++) {
    let p = p0 + e;
    if (p < P.n) { sum += ct[symAt(p)] >> 24u; }
  }
  return sum;
}
`;

/** Bits of each block of 4096 symbols. `ct[sym]` = length << 24 | code. */
export const HUFF_COUNT = PRELUDE + HUFF + /* wgsl */ `
@group(0) @binding(3) var<storage, read_write> blk: array<u32>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let b = wgIndex(wid, nwg);
  if (b >= P.nBlocks) { return; }
  part[lid] = threadBits(b, lid);
  workgroupBarrier();
  for (var off = 128u; off > 0u; off >>= 1u) {
    if (lid < off) { part[lid] += part[lid + off]; }
    workgroupBarrier();
  }
  if (lid == 0u) { blk[b] = part[0]; }
}
`;

/** Exclusive scan of the block bit counts, in one workgroup. */
export const HUFF_SCAN = PRELUDE + SCAN_PART + /* wgsl */ `
@group(0) @binding(1) var<storage, read_write> blk: array<u32>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
  let per = (P.nBlocks + 255u) / 256u;
  let s0 = lid * per;
  var sum = 0u;
  for (var e = 0u; e < per; e++) { if (s0 + e < P.nBlocks) { sum += blk[s0 + e]; } }
  part[lid] = sum;
  workgroupBarrier();
  scanPart(lid);
  var run = part[lid] - sum;
  for (var e = 0u; e < per; e++) {
    let i = s0 + e;
    if (i < P.nBlocks) { let x = blk[i]; blk[i] = run; run += x; }
  }
}
`;

/**
 * Writes the codes MSB-first at their scanned bit offsets. Words fully inside one thread's
 * span are its own; the two it shares with neighbours are merged with atomicOr. The words
 * are byte-swapped so that the buffer's bytes are the stream's bytes.
 */
export const HUFF_WRITE = PRELUDE + HUFF + /* wgsl */ `
@group(0) @binding(3) var<storage, read> blk: array<u32>;
@group(0) @binding(4) var<storage, read_write> outw: array<atomic<u32>>;
fn flush(w: u32, v: u32) { if (v != 0u) { atomicOr(&outw[w], bswap(v)); } }
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let b = wgIndex(wid, nwg);
  if (b >= P.nBlocks) { return; }
  let mine = threadBits(b, lid);
  part[lid] = mine;
  workgroupBarrier();
  scanPart(lid);
  let pos = blk[b] + part[lid] - mine;
  var w = pos >> 5u;
  var fill = pos & 31u; // bits used in the current word
  var acc = 0u;         // current word, MSB first, low (32 - fill) bits still zero
  let p0 = b * 4096u + lid * 16u;
  for (var e = 0u; e < 16u; e++) {
    let p = p0 + e;
    if (p < P.n) {
      let c = ct[symAt(p)];
      let len = c >> 24u;
      let code = c & 0xffffffu;
      if (len > 0u) {
        let end = fill + len;
        if (end < 32u) {
          acc |= code << (32u - end);
          fill = end;
        } else {
          let sp = end - 32u;
          acc |= code >> sp;
          flush(w, acc);
          w += 1u;
          acc = 0u;
          if (sp > 0u) { acc = code << (32u - sp); }
          fill = sp;
        }
      }
    }
  }
  if (fill > 0u) { flush(w, acc); }
}
`;

/**
 * Decode, first pass: one workgroup of 64 per row. Each thread folds its run of symbols
 * into (reset, sum) — an exception resets the chain to its stored bin — the workgroup
 * scans those segments, and each thread walks its run again from its prefix, writing bins
 * in original order and the min/max of the non-exception bins (the CPU's ±2^30 check).
 * exc = [positions (sorted) | bins] of the exceptions; firstPrev[i] = bin of row i−1's first.
 */
export const DEC_ROWS = PRELUDE + /* wgsl */ `
@group(0) @binding(1) var<storage, read> syms: array<u32>;
@group(0) @binding(2) var<storage, read> perms: array<u32>;
@group(0) @binding(3) var<storage, read> firstPrev: array<i32>;
@group(0) @binding(4) var<storage, read> exc: array<u32>;
@group(0) @binding(5) var<storage, read_write> bins: array<i32>;
@group(0) @binding(6) var<storage, read_write> mm: array<atomic<i32>, 2>;
var<workgroup> segR: array<u32, 64>;
var<workgroup> segV: array<i32, 64>;
fn symAt(p: u32) -> u32 { return (syms[p >> 1u] >> ((p & 1u) * 16u)) & 0xffffu; }
fn excBin(p: u32) -> i32 {
  var a = 0u;
  var z = P.nExc;
  while (z - a > 1u) {
    let m = (a + z) >> 1u;
    if (exc[m] <= p) { a = m; } else { z = m; }
  }
  return bitcast<i32>(exc[P.nExc + a]);
}
@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = wgIndex(wid, nwg);
  if (i >= P.rows) { return; }
  let cols = P.cols;
  let per = (cols + 63u) / 64u;
  let j0 = lid * per;
  let base = i * cols;
  var r = 0u;
  var v = 0;
  for (var e = 0u; e < per; e++) {
    let j = j0 + e;
    if (j < cols) {
      let s = symAt(base + j);
      if (s == 0u) { r = 1u; v = excBin(base + j); } else { v = v + (i32(s) - R); }
    }
  }
  segR[lid] = r;
  segV[lid] = v;
  workgroupBarrier();
  for (var off = 1u; off < 64u; off <<= 1u) {
    var ar = 0u;
    var av = 0;
    if (lid >= off) { ar = segR[lid - off]; av = segV[lid - off]; }
    workgroupBarrier();
    if (lid >= off && segR[lid] == 0u) { segR[lid] = ar; segV[lid] = av + segV[lid]; }
    workgroupBarrier();
  }
  var qp = firstPrev[i];
  if (lid > 0u) {
    if (segR[lid - 1u] != 0u) { qp = segV[lid - 1u]; } else { qp = qp + segV[lid - 1u]; }
  }
  var lo = 2147483647;
  var hi = -2147483647 - 1;
  var po = 0u;
  if (P.k > 0u) { po = (i / P.k) * cols; }
  for (var e = 0u; e < per; e++) {
    let j = j0 + e;
    if (j < cols) {
      let s = symAt(base + j);
      var q = 0;
      if (s == 0u) { q = excBin(base + j); } else { q = qp + (i32(s) - R); lo = min(lo, q); hi = max(hi, q); }
      var idx = base + j;
      if (P.k > 0u) { idx = base + perms[po + j]; }
      bins[idx] = q;
      qp = q;
    }
  }
  atomicMin(&mm[0], lo);
  atomicMax(&mm[1], hi);
}
`;

/** Decode, second pass: bins to storage bits through the bin table (0 outside it). */
export const DEC_MAP = PRELUDE + /* wgsl */ `
@group(0) @binding(1) var<storage, read> bins: array<i32>;
@group(0) @binding(2) var<storage, read> tab: array<u32>;
@group(0) @binding(3) var<storage, read_write> outb: array<u32>;
fn bitsOf(i: u32) -> u32 {
  let t = bins[i] - P.lo;
  if (t >= 0 && u32(t) < P.tabSize) { return tab[u32(t)]; }
  return 0u;
}
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let w = wgIndex(wid, nwg) * 256u + lid;
  if (P.dtype == 0u) {
    if (w < P.n) { outb[w] = bitsOf(w); }
  } else if (2u * w < P.n) {
    var v = bitsOf(2u * w) & 0xffffu;
    if (2u * w + 1u < P.n) { v |= (bitsOf(2u * w + 1u) & 0xffffu) << 16u; }
    outb[w] = v;
  }
}
`;
