/**
 * Exclusive prefix sum of `vec2<u32>` pairs on the GPU, in place, any length: each workgroup
 * scans 1024 pairs (4 per thread, then a Hillis–Steele scan of the 256 thread totals) and
 * leaves its total in a second array, which is scanned the same way (recursively) and added
 * back. Sums wrap modulo 2^32; callers take differences inside one frame, which stay exact.
 * The batch's block offsets (payload words, outlier ranks) and exception ranks use it.
 * @module
 */
import { UNIFORM } from "./wgsl.ts";

/** Pairs one workgroup scans. */
export const SCAN_SPAN = 1024;

/** Scans each span of 1024 pairs of `data[0..U.nItems)` and writes span totals to `sums`. */
export const SCAN_SPANS = UNIFORM + /* wgsl */ `
@group(0) @binding(1) var<storage, read_write> data: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read_write> sums: array<vec2<u32>>;
var<workgroup> sh: array<vec2<u32>, 256>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let wg = wgIndex(wid, nwg);
  let base = wg * 1024u + lid * 4u;
  var v: array<vec2<u32>, 4>;
  var t = vec2<u32>(0u);
  for (var k = 0u; k < 4u; k++) {
    let i = base + k;
    var x = vec2<u32>(0u);
    if (i < U.nItems) { x = data[i]; }
    v[k] = t;
    t += x;
  }
  sh[lid] = t;
  workgroupBarrier();
  for (var off = 1u; off < 256u; off <<= 1u) {
    var add = vec2<u32>(0u);
    if (lid >= off) { add = sh[lid - off]; }
    workgroupBarrier();
    sh[lid] += add;
    workgroupBarrier();
  }
  let before = sh[lid] - t;
  for (var k = 0u; k < 4u; k++) {
    let i = base + k;
    if (i < U.nItems) { data[i] = v[k] + before; }
  }
  if (lid == 255u) { sums[wg] = sh[255]; }
}
`;

/** Adds each span's scanned total back to its pairs. */
export const SCAN_ADD = UNIFORM + /* wgsl */ `
@group(0) @binding(1) var<storage, read_write> data: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read> sums: array<vec2<u32>>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let wg = wgIndex(wid, nwg);
  let add = sums[wg];
  for (var k = 0u; k < 4u; k++) {
    let i = wg * 1024u + k * 256u + lid;
    if (i < U.nItems) { data[i] += add; }
  }
}
`;

/** What a scan needs from the caller: buffers, uniforms and dispatches in the current pass. */
export interface ScanHost {
  buffer(bytes: number): GPUBuffer;
  uniform(nBlocks: number, nFrames: number, nRows: number, nItems: number): GPUBuffer;
  dispatch(kernel: "scanSpans" | "scanAdd", buffers: GPUBuffer[], workgroups: number): void;
}

/** Records the exclusive scan of `n` pairs of `data` (levels of span totals in fresh buffers). */
export function recordScan(host: ScanHost, data: GPUBuffer, n: number): void {
  const spans = Math.ceil(n / SCAN_SPAN);
  const sums = host.buffer(8 * spans);
  const u = host.uniform(0, 0, 0, n);
  host.dispatch("scanSpans", [u, data, sums], spans);
  if (spans > 1) {
    recordScan(host, sums, spans);
    host.dispatch("scanAdd", [u, data, sums], spans);
  }
}
