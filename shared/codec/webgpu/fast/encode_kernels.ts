/**
 * WGSL of the fast encoder, one thread per block of the batch (frame table `EF`, frame state
 * `FS`; word meanings in encode.ts). Each kernel makes, for its block, the decision the CPU
 * encoder (../../fast/encode.ts, kernels.ts) makes, in the same integer and fp32 arithmetic:
 *
 * - `minmax`: finite min and max per frame as ordered keys (integer compares only).
 * - `blockStats`: `q = roundEven(f32(x · inv))` (|y| < 2^23 tested and rounded on the bits of y;
 *   NaN, ±Inf and larger values are exceptions), zigzagged residuals under both predictors, each block's
 *   width, width without its one largest code and that code's slot; the predictor sample sums
 *   (`choosePredictor`: an exception repeats the previous value there) and exception counts.
 * - `decide0` / `decide1`: the predictor, then the two-pass outlier decision (first pass priced
 *   at each block's own width, giving the price of the second), the width byte, payload words
 *   and outlier flag of each block; `outlierBits` per frame.
 * - `frameTotals`: payload words and outliers of each frame from the scanned block offsets.
 * - `pack`: the widths bytes, each block's codes at its width (LSB first) at its scanned word
 *   offset, and its outlier entry (slot | code << 5) at its scanned rank.
 * - `outlierWords`: each outlier word gathered from the entries that overlap it (no atomics).
 * - `excRows` / `excWrite`: exception counts per row, then indices (ascending: rows in order,
 *   columns in order) and raw bits at each row's scanned rank; only frames with exceptions.
 *
 * Reductions per frame run in workgroup memory, then one atomic per workgroup when all its
 * blocks are in one frame (else one per thread).
 * @module
 */
import { FRAME_WORDS, geometry, HELPERS, search, UNIFORM } from "./wgsl.ts";

/** Frame table words (encode). */
export const EF = {
  inOff: 0,
  rows: 1,
  cols: 2,
  blockStart: 3,
  blocks: 4,
  rowStart: 5,
  inv: 6,
  pred: 7,
  stride: 8,
} as const;
/** `EF.pred` values: the predictor asked for, auto, or a frame the GPU leaves (CPU encode). */
export const PRED_NONE = 0, PRED_DELTA = 1, PRED_AUTO = 2, PRED_SKIP = 3;

/** Frame state words (atomics on the GPU, read back). */
export const FS = {
  minKey: 0,
  maxKey: 1,
  noneBits: 2,
  deltaBits: 3,
  wo0: 4,
  outlierBits: 5,
  exceptions: 6,
  predictor: 7,
  payloadWords: 8,
  outliers: 9,
} as const;

/** Layout table words (host-computed after the sizes come back). */
export const LT = {
  bodyWord: 0,
  payloadWord: 1,
  outlierWord: 2,
  excWord: 3,
  outWordStart: 4,
  outlierWords: 5,
  outliers: 6,
  outlierBits: 7,
  exceptions: 8,
  rankBase: 9,
} as const;

const W = FRAME_WORDS;

const QUANT = /* wgsl */ `
// y (bits, |y| < 2^23) rounded to the nearest integer, ties to even, in integer arithmetic
fn roundBits(b: u32) -> i32 {
  let a = b & 0x7fffffffu;
  let e = a >> 23u;
  if (e < 126u) { return 0; } // |y| < 0.5, zeros and subnormals included
  let m = (a & 0x7fffffu) | 0x800000u;
  let sh = 150u - e; // 1..24
  let half = 1u << (sh - 1u);
  let rem = m & ((half << 1u) - 1u);
  var q = m >> sh;
  if (rem > half || (rem == half && (q & 1u) == 1u)) { q += 1u; }
  return select(bitcast<i32>(q), -bitcast<i32>(q), (b & 0x80000000u) != 0u);
}
// (q, 1) for a value that quantizes, (0, 0) for an exception: non-finite input, or |y| >= 2^23.
// The one float operation is the product y = f32(x · inv); the range test and the rounding read
// y's bits, so neither NaN, infinity nor the rounding mode of a built-in is involved.
fn quant(bits: u32, inv: f32) -> vec2<i32> {
  if (!finiteBits(bits)) { return vec2<i32>(0, 0); }
  let y = bitcast<u32>(bitcast<f32>(bits) * inv);
  if ((y & 0x7fffffffu) >= 0x4b000000u) { return vec2<i32>(0, 0); }
  return vec2<i32>(roundBits(y), 1);
}
`;

const PER_BLOCK_ARGS = /* wgsl */ `@builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>`;

/** Frames of the workgroup's first and last block: a per-frame reduction is one atomic when equal. */
const WG_FRAMES = /* wgsl */ `
  let wg = wgIndex(wid, nwg);
  let B = wg * 256u + lid;
  let nb = U.nBlocks;
  let fA = frameOf(min(wg * 256u, nb - 1u));
  let fB = frameOf(min(wg * 256u + 255u, nb - 1u));
`;

const RED_SUM4 = /* wgsl */ `
var<workgroup> red4: array<vec4<u32>, 256>;
fn wgSum4(lid: u32, v: vec4<u32>) -> vec4<u32> {
  red4[lid] = v;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (lid < s) { red4[lid] += red4[lid + s]; }
    workgroupBarrier();
  }
  let r = red4[0];
  workgroupBarrier();
  return r;
}
`;

const RED_MAX = /* wgsl */ `
var<workgroup> red1: array<u32, 256>;
fn wgMax(lid: u32, v: u32) -> u32 {
  red1[lid] = v;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (lid < s) { red1[lid] = max(red1[lid], red1[lid + s]); }
    workgroupBarrier();
  }
  let r = red1[0];
  workgroupBarrier();
  return r;
}
`;

const RED_MINMAX = /* wgsl */ `
var<workgroup> red2: array<vec2<u32>, 256>;
fn wgMinMax(lid: u32, v: vec2<u32>) -> vec2<u32> {
  red2[lid] = v;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (lid < s) {
      let o = red2[lid + s];
      red2[lid] = vec2<u32>(min(red2[lid].x, o.x), max(red2[lid].y, o.y));
    }
    workgroupBarrier();
  }
  let r = red2[0];
  workgroupBarrier();
  return r;
}
`;

const HEAD = UNIFORM + HELPERS + geometry("EF");

export const MINMAX = HEAD + RED_MINMAX + /* wgsl */ `
@group(0) @binding(1) var<storage, read> EF: array<u32>;
@group(0) @binding(2) var<storage, read> X: array<u32>;
@group(0) @binding(3) var<storage, read_write> FS: array<atomic<u32>>;
@compute @workgroup_size(256)
fn main(${PER_BLOCK_ARGS}) {
  ${WG_FRAMES}
  var mm = vec2<u32>(0xffffffffu, 0u);
  var f = fA;
  if (B < nb) {
    f = frameOf(B);
    let G = geo(f, B);
    var i = EF[f * ${W}u] + G.r0 * G.cols + G.c;
    for (var j = 0u; j < 32u; j++) {
      if (j < G.len) {
        let b = X[i];
        i += G.cols;
        if (finiteBits(b)) { let k = okey(b); mm = vec2<u32>(min(mm.x, k), max(mm.y, k)); }
      }
    }
  }
  let r = wgMinMax(lid, mm);
  if (fA == fB) {
    if (lid == 0u) { atomicMin(&FS[fA * ${W}u], r.x); atomicMax(&FS[fA * ${W}u + 1u], r.y); }
  } else if (B < nb) {
    atomicMin(&FS[f * ${W}u], mm.x);
    atomicMax(&FS[f * ${W}u + 1u], mm.y);
  }
}
`;

export const BLOCK_STATS = HEAD + QUANT + RED_SUM4 + /* wgsl */ `
@group(0) @binding(1) var<storage, read> EF: array<u32>;
@group(0) @binding(2) var<storage, read> X: array<u32>;
@group(0) @binding(3) var<storage, read_write> FS: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read_write> META: array<vec2<u32>>;

// width | width without the one largest code << 8 | its slot << 16 (residualBlocks)
fn look(codes: ptr<function, array<u32, 32>>, len: u32, orv: u32) -> u32 {
  let w = bitWidth(orv);
  if (w < 2u) { return w | (w << 8u); }
  let t = w - 1u;
  var tops = 0u;
  var top = 0u;
  var rest = 0u;
  for (var j = 0u; j < 32u; j++) {
    if (j < len) {
      let code = (*codes)[j];
      let hit = code >> t;
      tops += hit;
      if (hit != 0u) { top = j; } else { rest |= code; }
    }
  }
  if (tops == 1u) { return w | (bitWidth(rest) << 8u) | (top << 16u); }
  return w | (w << 8u);
}

fn addStats(f: u32, v: vec4<u32>) {
  if (v.x != 0u) { atomicAdd(&FS[f * ${W}u + 2u], v.x); }
  if (v.y != 0u) { atomicAdd(&FS[f * ${W}u + 3u], v.y); }
  if (v.z != 0u) { atomicAdd(&FS[f * ${W}u + 6u], v.z); }
}

@compute @workgroup_size(256)
fn main(${PER_BLOCK_ARGS}) {
  ${WG_FRAMES}
  var acc = vec4<u32>(0u);
  var f = fA;
  if (B < nb) {
    f = frameOf(B);
    let e = f * ${W}u;
    let pred = EF[e + 7u];
    if (pred != 3u) {
      let G = geo(f, B);
      let inv = bitcast<f32>(EF[e + 6u]);
      var cn: array<u32, 32>;
      var cd: array<u32, 32>;
      var orN = 0u;
      var orC = 0u;
      var orD = 0u;
      var prev = 0i;
      var nExc = 0u;
      var i = EF[e] + G.r0 * G.cols + G.c;
      for (var j = 0u; j < 32u; j++) {
        var a = 0u;
        var d = 0u;
        if (j < G.len) {
          let qv = quant(X[i], inv);
          i += G.cols;
          if (qv.y != 0) {
            a = zz(qv.x);
            d = zz(qv.x - prev);
            prev = qv.x;
            orC |= a;
          } else {
            nExc += 1u;
            orC |= zz(prev);
          }
        }
        cn[j] = a;
        cd[j] = d;
        orN |= a;
        orD |= d;
      }
      META[B] = vec2<u32>(look(&cn, G.len, orN), look(&cd, G.len, orD));
      var sN = 0u;
      var sD = 0u;
      if (pred == 2u && G.g % EF[e + 8u] == 0u) {
        sN = G.len * bitWidth(orC);
        sD = G.len * bitWidth(orD);
      }
      acc = vec4<u32>(sN, sD, nExc, 0u);
    }
  }
  let r = wgSum4(lid, acc);
  if (fA == fB) {
    if (lid == 0u) { addStats(fA, r); }
  } else if (B < nb) {
    addStats(f, acc);
  }
}
`;

export const DECIDE0 = HEAD + RED_MAX + /* wgsl */ `
@group(0) @binding(1) var<storage, read> EF: array<u32>;
@group(0) @binding(2) var<storage, read> META: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read_write> FS: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read_write> SEL: array<u32>;
@compute @workgroup_size(256)
fn main(${PER_BLOCK_ARGS}) {
  ${WG_FRAMES}
  var cand = 0u;
  var f = fA;
  if (B < nb) {
    f = frameOf(B);
    let e = f * ${W}u;
    let pred = EF[e + 7u];
    if (pred != 3u) {
      var d = pred;
      if (pred == 2u) {
        d = select(0u, 1u, atomicLoad(&FS[e + 3u]) < atomicLoad(&FS[e + 2u]));
      }
      let G = geo(f, B);
      let m = META[B];
      let s = select(m.x, m.y, d == 1u);
      let w1 = s & 0xffu;
      let w2 = (s >> 8u) & 0xffu;
      // first pass: an outlier priced at its own width
      if ((w1 - w2) * G.len > 5u + w1) { cand = w1; }
      SEL[B] = s;
      if (G.b == 0u) { atomicStore(&FS[e + 7u], d); }
    }
  }
  let r = wgMax(lid, cand);
  if (fA == fB) {
    if (lid == 0u && r != 0u) { atomicMax(&FS[fA * ${W}u + 4u], r); }
  } else if (B < nb && cand != 0u) {
    atomicMax(&FS[f * ${W}u + 4u], cand);
  }
}
`;

export const DECIDE1 = HEAD + RED_MAX + /* wgsl */ `
@group(0) @binding(1) var<storage, read> EF: array<u32>;
@group(0) @binding(2) var<storage, read_write> FS: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read_write> SEL: array<u32>;
@group(0) @binding(4) var<storage, read_write> SCAN: array<vec2<u32>>;
@compute @workgroup_size(256)
fn main(${PER_BLOCK_ARGS}) {
  ${WG_FRAMES}
  var ob = 0u;
  var f = fA;
  if (B == 0u) { SCAN[nb] = vec2<u32>(0u); }
  if (B < nb) {
    f = frameOf(B);
    let e = f * ${W}u;
    if (EF[e + 7u] != 3u) {
      let G = geo(f, B);
      let s = SEL[B];
      let w1 = s & 0xffu;
      let w2 = (s >> 8u) & 0xffu;
      // second pass: priced at the width the first pass gave the frame's outliers
      let apart = (w1 - w2) * G.len > 5u + atomicLoad(&FS[e + 4u]);
      let w = select(w1, w2, apart);
      SEL[B] = select(w1, w2 | 0x40u, apart) | (s & 0xff0000u);
      SCAN[B] = vec2<u32>(blockWords(G.len, w), select(0u, 1u, apart));
      if (apart) { ob = w1; }
    } else {
      SCAN[B] = vec2<u32>(0u);
    }
  }
  let r = wgMax(lid, ob);
  if (fA == fB) {
    if (lid == 0u && r != 0u) { atomicMax(&FS[fA * ${W}u + 5u], r); }
  } else if (B < nb && ob != 0u) {
    atomicMax(&FS[f * ${W}u + 5u], ob);
  }
}
`;

export const FRAME_TOTALS = UNIFORM + /* wgsl */ `
@group(0) @binding(1) var<storage, read> EF: array<u32>;
@group(0) @binding(2) var<storage, read> SCAN: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read_write> FS: array<atomic<u32>>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let f = gid.x;
  if (f >= U.nFrames) { return; }
  let e = f * ${W}u;
  let s0 = SCAN[EF[e + 3u]];
  let s1 = SCAN[EF[e + 3u] + EF[e + 4u]];
  atomicStore(&FS[e + 8u], s1.x - s0.x);
  atomicStore(&FS[e + 9u], s1.y - s0.y);
}
`;

export const PACK = HEAD + QUANT + /* wgsl */ `
@group(0) @binding(1) var<storage, read> EF: array<u32>;
@group(0) @binding(2) var<storage, read> X: array<u32>;
@group(0) @binding(3) var<storage, read> FS: array<u32>;
@group(0) @binding(4) var<storage, read> SEL: array<u32>;
@group(0) @binding(5) var<storage, read> SCAN: array<vec2<u32>>;
@group(0) @binding(6) var<storage, read> LT: array<u32>;
@group(0) @binding(7) var<storage, read_write> OUT: array<u32>;
@group(0) @binding(8) var<storage, read_write> ENT: array<u32>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let B = wgIndex(wid, nwg) * 256u + lid;
  if (B >= U.nBlocks) { return; }
  let f = frameOf(B);
  let e = f * ${W}u;
  if (EF[e + 7u] == 3u) { return; }
  let G = geo(f, B);
  let l = f * ${W}u;
  let sel = SEL[B];
  let w = sel & 0x3fu;
  let apart = (sel & 0x40u) != 0u;
  let slot = (sel >> 16u) & 0xffu;
  if ((G.b & 3u) == 0u) {
    var word = 0u;
    for (var k = 0u; k < 4u; k++) {
      if (G.b + k < EF[e + 4u]) { word |= (SEL[B + k] & 0xffu) << (8u * k); }
    }
    OUT[LT[l] + 11u + (G.b >> 2u)] = word;
  }
  let delta = FS[e + 7u] == 1u;
  let inv = bitcast<f32>(EF[e + 6u]);
  let sc = SCAN[B];
  var o = LT[l + 1u] + (sc.x - SCAN[EF[e + 3u]].x);
  var i = EF[e] + G.r0 * G.cols + G.c;
  var prev = 0i;
  var acc = 0u;
  var nbits = 0u;
  for (var j = 0u; j < 32u; j++) {
    if (j < G.len) {
      let qv = quant(X[i], inv);
      i += G.cols;
      var code = 0u;
      if (qv.y != 0) {
        code = select(zz(qv.x), zz(qv.x - prev), delta);
        prev = qv.x;
      }
      if (apart && j == slot) {
        ENT[sc.y] = slot | (code << 5u);
        code = 0u;
      }
      if (w != 0u) {
        acc |= code << nbits;
        nbits += w;
        if (nbits >= 32u) {
          OUT[o] = acc;
          o += 1u;
          nbits -= 32u;
          acc = select(0u, code >> ((w - nbits) & 31u), nbits > 0u);
        }
      }
    }
  }
  if (nbits > 0u) { OUT[o] = acc; }
}
`;

export const OUTLIER_WORDS = UNIFORM + search("frameOfWord", "LT", LT.outWordStart) + /* wgsl */ `
@group(0) @binding(1) var<storage, read> LT: array<u32>;
@group(0) @binding(2) var<storage, read> ENT: array<u32>;
@group(0) @binding(3) var<storage, read_write> OUT: array<u32>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let Wd = wgIndex(wid, nwg) * 256u + lid;
  if (Wd >= U.nItems) { return; }
  let f = frameOfWord(Wd);
  let l = f * ${W}u;
  let k = Wd - LT[l + 4u];
  let s = 5u + LT[l + 7u];
  let bit0 = 32u * k;
  let e0 = bit0 / s;
  let e1 = min(LT[l + 6u] - 1u, (bit0 + 31u) / s);
  var word = 0u;
  for (var q = e0; q <= e1; q++) {
    let v = ENT[LT[l + 9u] + q];
    let p = q * s;
    if (p >= bit0) { word |= v << (p - bit0); } else { word |= v >> (bit0 - p); }
  }
  OUT[LT[l + 2u] + k] = word;
}
`;

const ROW_HEAD = UNIFORM + HELPERS + QUANT + search("frameOfRow", "EF", EF.rowStart);

export const EXC_ROWS = ROW_HEAD + /* wgsl */ `
@group(0) @binding(1) var<storage, read> EF: array<u32>;
@group(0) @binding(2) var<storage, read> X: array<u32>;
@group(0) @binding(3) var<storage, read> FS: array<u32>;
@group(0) @binding(4) var<storage, read_write> RS: array<vec2<u32>>;
@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let R = wgIndex(wid, nwg) * 64u + lid;
  if (R == 0u) { RS[U.nRows] = vec2<u32>(0u); }
  if (R >= U.nRows) { return; }
  let f = frameOfRow(R);
  let e = f * ${W}u;
  var cnt = 0u;
  if (EF[e + 7u] != 3u && FS[e + 6u] != 0u) {
    let cols = EF[e + 2u];
    let inv = bitcast<f32>(EF[e + 6u]);
    let base = EF[e] + (R - EF[e + 5u]) * cols;
    for (var c = 0u; c < cols; c++) {
      if (quant(X[base + c], inv).y == 0) { cnt += 1u; }
    }
  }
  RS[R] = vec2<u32>(cnt, 0u);
}
`;

export const EXC_WRITE = ROW_HEAD + /* wgsl */ `
@group(0) @binding(1) var<storage, read> EF: array<u32>;
@group(0) @binding(2) var<storage, read> X: array<u32>;
@group(0) @binding(3) var<storage, read> FS: array<u32>;
@group(0) @binding(4) var<storage, read> RS: array<vec2<u32>>;
@group(0) @binding(5) var<storage, read> LT: array<u32>;
@group(0) @binding(6) var<storage, read_write> OUT: array<u32>;
@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let R = wgIndex(wid, nwg) * 64u + lid;
  if (R >= U.nRows) { return; }
  if (RS[R + 1u].x == RS[R].x) { return; }
  let f = frameOfRow(R);
  let e = f * ${W}u;
  let cols = EF[e + 2u];
  let inv = bitcast<f32>(EF[e + 6u]);
  let r = R - EF[e + 5u];
  let base = EF[e] + r * cols;
  let at = LT[e + 3u];
  let n = FS[e + 6u];
  var rank = RS[R].x - RS[EF[e + 5u]].x;
  for (var c = 0u; c < cols; c++) {
    let b = X[base + c];
    if (quant(b, inv).y == 0) {
      OUT[at + rank] = r * cols + c;
      OUT[at + n + rank] = b;
      rank += 1u;
    }
  }
}
`;
