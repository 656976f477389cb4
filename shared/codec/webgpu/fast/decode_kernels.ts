/**
 * WGSL of the fast decoder, one thread per block of the batch (frame table `DF`, state `DS`;
 * word meanings below). The block offsets are a prefix sum (scan.ts) over the widths, so every
 * block decodes independently, as ../../fast/decode.ts does block by block:
 *
 * - `decWidths`: each block's payload words and outlier flag from its width byte; a byte with
 *   bit 7 set or a width over 31 marks the frame corrupt.
 * - `decTotals`: payload words and flagged blocks per frame (checked against the header on
 *   the host).
 * - `decBlocks`: the block's outlier (slot, code) at its scanned rank, its codes at its scanned
 *   word offset, `q` (zigzag, then the running sum for delta, wrapping as int32), and
 *   `f32(q) · step` written straight to the batch's output. A slot past the block's end marks
 *   the frame corrupt; a `|q| >= 2^23` (never written by the encoder, and past the range where
 *   one fp32 product equals the CPU's double product rounded once) sends the frame to the CPU.
 * - `decExc`: exceptions' raw bits at their output indices (the list built on the host).
 * @module
 */
import { FRAME_WORDS, geometry, HELPERS, UNIFORM } from "./wgsl.ts";

/** Frame table words (decode). */
export const DF = {
  srcWord: 0,
  rows: 1,
  cols: 2,
  blockStart: 3,
  blocks: 4,
  outOff: 5,
  step: 6,
  delta: 7,
  outlierBits: 8,
  payloadWord: 9,
  outlierWord: 10,
} as const;

/** Decode state words (atomics, read back with the values). */
export const DS = { badWidth: 0, badSlot: 1, bigQ: 2, payloadWords: 3, flagged: 4 } as const;

const W = FRAME_WORDS;
const HEAD = UNIFORM + HELPERS + geometry("DF");
const ARGS = /* wgsl */ `@builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>`;

const WIDTH_BYTE = /* wgsl */ `
fn widthByte(f: u32, b: u32) -> u32 {
  return (SRC[DF[f * ${W}u] + 11u + (b >> 2u)] >> ((b & 3u) * 8u)) & 0xffu;
}
`;

export const DEC_WIDTHS = HEAD + WIDTH_BYTE + /* wgsl */ `
@group(0) @binding(1) var<storage, read> DF: array<u32>;
@group(0) @binding(2) var<storage, read> SRC: array<u32>;
@group(0) @binding(3) var<storage, read_write> SCAN: array<vec2<u32>>;
@group(0) @binding(4) var<storage, read_write> DS: array<atomic<u32>>;
@compute @workgroup_size(256)
fn main(${ARGS}) {
  let B = wgIndex(wid, nwg) * 256u + lid;
  if (B == 0u) { SCAN[U.nBlocks] = vec2<u32>(0u); }
  if (B >= U.nBlocks) { return; }
  let f = frameOf(B);
  let G = geo(f, B);
  let wb = widthByte(f, G.b);
  if ((wb & 0x80u) != 0u || (wb & 0x3fu) > 31u) { atomicOr(&DS[f * ${W}u], 1u); }
  SCAN[B] = vec2<u32>(blockWords(G.len, min(wb & 0x3fu, 31u)), (wb >> 6u) & 1u);
}
`;

export const DEC_TOTALS = UNIFORM + /* wgsl */ `
@group(0) @binding(1) var<storage, read> DF: array<u32>;
@group(0) @binding(2) var<storage, read> SCAN: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read_write> DS: array<atomic<u32>>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let f = gid.x;
  if (f >= U.nFrames) { return; }
  let e = f * ${W}u;
  let s0 = SCAN[DF[e + 3u]];
  let s1 = SCAN[DF[e + 3u] + DF[e + 4u]];
  atomicStore(&DS[e + 3u], s1.x - s0.x);
  atomicStore(&DS[e + 4u], s1.y - s0.y);
}
`;

export const DEC_BLOCKS = HEAD + WIDTH_BYTE + /* wgsl */ `
@group(0) @binding(1) var<storage, read> DF: array<u32>;
@group(0) @binding(2) var<storage, read> SRC: array<u32>;
@group(0) @binding(3) var<storage, read> SCAN: array<vec2<u32>>;
@group(0) @binding(4) var<storage, read_write> DS: array<atomic<u32>>;
@group(0) @binding(5) var<storage, read_write> OUT: array<u32>;

// w bits (at most 31) at bit \`bit\` of the word array from word \`base\`, LSB first
fn take(base: u32, bit: u32, w: u32) -> u32 {
  if (w == 0u) { return 0u; }
  let i = base + (bit >> 5u);
  let sh = bit & 31u;
  var v = SRC[i] >> sh;
  if (sh + w > 32u) { v |= SRC[i + 1u] << (32u - sh); }
  return v & lowMask(w);
}

@compute @workgroup_size(256)
fn main(${ARGS}) {
  let B = wgIndex(wid, nwg) * 256u + lid;
  if (B >= U.nBlocks) { return; }
  let f = frameOf(B);
  let e = f * ${W}u;
  let G = geo(f, B);
  let wb = widthByte(f, G.b);
  let w = min(wb & 0x3fu, 31u);
  let sc = SCAN[B];
  let s0 = SCAN[DF[e + 3u]];
  var slot = 32u;
  var big = 0u;
  if ((wb & 0x40u) != 0u) {
    let ob = DF[e + 8u];
    let at = (sc.y - s0.y) * (5u + ob);
    slot = take(DF[e + 10u], at, 5u);
    big = take(DF[e + 10u], at + 5u, ob);
    if (slot >= G.len) { atomicOr(&DS[e + 1u], 1u); }
  }
  let base = DF[e + 9u] + (sc.x - s0.x);
  let delta = DF[e + 7u] == 1u;
  let step = bitcast<f32>(DF[e + 6u]);
  var out = DF[e + 5u] + G.r0 * G.cols + G.c;
  var prev = 0i;
  var bigQ = false;
  for (var j = 0u; j < 32u; j++) {
    if (j < G.len) {
      var code = take(base, j * w, w);
      if (j == slot) { code = big; }
      var q = unzz(code);
      if (delta) { q = prev + q; }
      prev = q;
      if (q >= 0x800000i || q <= -0x800000i) { bigQ = true; }
      OUT[out] = bitcast<u32>(f32(q) * step);
      out += G.cols;
    }
  }
  if (bigQ) { atomicOr(&DS[e + 2u], 1u); }
}
`;

export const DEC_EXC = UNIFORM + /* wgsl */ `
@group(0) @binding(1) var<storage, read> EXC: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read_write> OUT: array<u32>;
@compute @workgroup_size(256)
fn main(${ARGS}) {
  let t = wgIndex(wid, nwg) * 256u + lid;
  if (t >= U.nItems) { return; }
  let x = EXC[t];
  OUT[x.x] = x.y;
}
`;
