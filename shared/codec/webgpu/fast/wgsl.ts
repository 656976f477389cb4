/**
 * WGSL shared by the fast codec's kernels: the per-dispatch uniform, 2-D workgroup
 * linearisation, the block geometry of a frame, and the format's integer helpers.
 *
 * A batch lays its frames' blocks out one after another (frame by frame, block order (g, c)
 * inside a frame), so kernels run one thread per block of the whole batch and find their
 * frame by binary search in the frame table (a few hundred entries, cached).
 * @module
 */

/** Words per frame in the frame tables (encode `EF`, decode `DF`). */
export const FRAME_WORDS = 16;

/** Uniform of every kernel: counts of the batch (blocks, frames, rows, exceptions or words). */
export const UNIFORM = /* wgsl */ `
struct Uni { nBlocks: u32, nFrames: u32, nRows: u32, nItems: u32 }
@group(0) @binding(0) var<uniform> U: Uni;
fn wgIndex(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.y * nwg.x + wid.x; }
`;

/** Integer helpers of the format (layout.ts): ordered keys, bit widths, zigzag, block words. */
export const HELPERS = /* wgsl */ `
fn okey(b: u32) -> u32 { if ((b & 0x80000000u) != 0u) { return ~b; } return b | 0x80000000u; }
fn finiteBits(b: u32) -> bool { return (b & 0x7f800000u) != 0x7f800000u; }
fn bitWidth(v: u32) -> u32 { return 32u - countLeadingZeros(v); }
fn zz(e: i32) -> u32 { return bitcast<u32>((e << 1u) ^ (e >> 31u)); }
fn unzz(c: u32) -> i32 { return bitcast<i32>(c >> 1u) ^ -bitcast<i32>(c & 1u); }
fn blockWords(len: u32, w: u32) -> u32 { return (len * w + 31u) >> 5u; }
fn lowMask(w: u32) -> u32 { if (w >= 32u) { return 0xffffffffu; } return (1u << w) - 1u; }
`;

/**
 * Frame lookup and block geometry over a frame table \`T\` of ${FRAME_WORDS} words per frame
 * whose words 1..4 are rows, cols, first global block and blocks.
 */
export function geometry(table: string): string {
  return search("frameOf", table, 3) + /* wgsl */ `
struct Geo { cols: u32, b: u32, g: u32, c: u32, r0: u32, len: u32 }
fn geo(f: u32, B: u32) -> Geo {
  let e = f * ${FRAME_WORDS}u;
  let cols = ${table}[e + 2u];
  let b = B - ${table}[e + 3u];
  let g = b / cols;
  let c = b - g * cols;
  let r0 = g * 32u;
  return Geo(cols, b, g, c, r0, min(32u, ${table}[e + 1u] - r0));
}
`;
}

/**
 * \`fn name(i: u32) -> u32\`: the last frame whose word \`word\` (a nondecreasing start index)
 * is at most \`i\`, the frame whose range holds \`i\` when empty ranges share their start.
 */
export function search(name: string, table: string, word: number): string {
  return /* wgsl */ `
fn ${name}(i: u32) -> u32 {
  var lo = 0u;
  var hi = U.nFrames;
  while (hi - lo > 1u) {
    let m = (lo + hi) >> 1u;
    if (${table}[m * ${FRAME_WORDS}u + ${word}u] <= i) { lo = m; } else { hi = m; }
  }
  return lo;
}
`;
}
