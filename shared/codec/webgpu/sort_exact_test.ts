/**
 * The GPU sort makes the CPU's permutation for every frame, on any conforming GPU: the
 * column sums are the CPU's Float64 sums emulated with integers (sum64.ts), so neither
 * subnormal flushing (NVIDIA flushes fp32 subnormals in compute shaders) nor fp32
 * rounding can reorder two columns. These frames are built to break a float sort: sums
 * over 277 binades, cancellations, subnormals, ties that only the double rounding makes.
 */
import { assert, assertEquals } from "@std/assert";
import { encode, type EncodeOptions } from "../mod.ts";
import { sortGrid } from "../sort/shared_index.ts";
import { rng } from "../testdata/gen.ts";
import { createGpuCodec, type GpuCodec } from "./mod.ts";
import { SORT } from "./kernels.ts";

let shared: Promise<GpuCodec> | undefined;
const gpu = () => shared ??= createGpuCodec({ timeoutMs: 20_000 });
const opts = { sanitizeResources: false, sanitizeOps: false };

const f = new Float32Array(1);
const u = new Uint32Array(f.buffer);
const fromBits = (b: number) => (u[0] = b, f[0]);

/** Values over the whole fp32 range: random sign, binade and mantissa, some subnormal. */
function wild(rows: number, cols: number, seed: number): Float32Array {
  const r = rng(seed);
  const v = new Float32Array(rows * cols);
  for (let i = 0; i < v.length; i++) {
    const x = r();
    const sign = r() < 0.5 ? 0x80000000 : 0;
    const mant = Math.floor(r() * 0x800000);
    // mostly a few nearby binades (so sums interact), sometimes any binade or a subnormal
    const ex = x < 0.6 ? 120 + Math.floor(r() * 12) : x < 0.9 ? 1 + Math.floor(r() * 254) : 0;
    v[i] = fromBits((sign | (ex << 23) | mant) >>> 0);
  }
  return v;
}

/** Columns whose sums tie in fp32 but not in double, cancel exactly, or hold only ±0 and subnormals. */
function nearTies(rows: number, cols: number, seed: number): Float32Array {
  const r = rng(seed);
  const v = new Float32Array(rows * cols);
  const pool = [
    1,
    2 ** -24,
    -(2 ** -24),
    2 ** -25,
    1 + 2 ** -23,
    -1,
    3,
    2 ** -149,
    -(2 ** -149),
    1e-40,
    -0,
    0,
  ];
  for (let i = 0; i < v.length; i++) v[i] = pool[Math.floor(r() * pool.length)];
  return v;
}

/** Subnormals, ±0 and a few normals: flushing subnormals to zero changes the CPU's order. */
function subnormals(rows: number, cols: number, seed: number): Float32Array {
  const r = rng(seed);
  const v = new Float32Array(rows * cols);
  for (let i = 0; i < v.length; i++) {
    const x = r();
    v[i] = x < 0.7
      ? fromBits(((r() < 0.5 ? 0x80000000 : 0) | Math.floor(1 + r() * 0x7fffff)) >>> 0)
      : x < 0.9
      ? (r() < 0.5 ? -0 : 0)
      : (r() - 0.5) * 1e-37;
  }
  return v;
}

function flushSubnormals(v: Float32Array): Float32Array {
  return v.map((x) => Math.abs(x) < 2 ** -126 ? 0 : x);
}

async function sameAsCpu(data: Float32Array, rows: number, cols: number, k: number, ctx: string) {
  const g = await gpu();
  const t = { dtype: "f32" as const, shape: [rows, cols], data };
  const o: EncodeOptions = {
    codec: "kvsort",
    errorBound: 1e-2,
    mode: "rel",
    indexShare: k,
    lossless: "none",
  };
  const { bytes, info } = await g.encodeWithInfo(t, o);
  assertEquals(info.backend, "webgpu", `${ctx}: ${info.fallback}`);
  const want = encode(t, o);
  assert(bytes.length === want.length && bytes.every((b, i) => b === want[i]), `${ctx}: stream differs`);
}

Deno.test({
  name: "GPU sort gives the CPU's permutation on sums over all binades, cancellations and ties",
  ...opts,
  fn: async () => {
    let seed = 1;
    for (const [rows, cols] of [[64, 64], [45, 128], [200, 16], [7, 1024]]) {
      for (const k of [1, 2, 3, 8, 32, 200]) {
        await sameAsCpu(wild(rows, cols, seed), rows, cols, k, `wild [${rows},${cols}] k ${k}`);
        await sameAsCpu(nearTies(rows, cols, seed), rows, cols, k, `ties [${rows},${cols}] k ${k}`);
        seed++;
      }
    }
    // sums that overflow fp32 (the CPU's key is +∞ or −∞) and exact cancellation to +0
    const big = new Float32Array(16 * 32).map((_, i) => (i % 3 === 0 ? -3e38 : 3e38) * (1 + (i % 5) / 8));
    for (const k of [2, 4, 16]) await sameAsCpu(big, 16, 32, k, `overflow k ${k}`);
  },
});

Deno.test({
  name: "GPU sort does not depend on subnormal handling: frames where flushing reorders the CPU's sort",
  ...opts,
  fn: async () => {
    for (const k of [1, 4, 32]) {
      const rows = 64, cols = 64;
      const v = subnormals(rows, cols, 40 + k);
      // the frame is sensitive: a GPU that flushed subnormals in a float sort would reorder columns
      const exact = sortGrid(v, rows, cols, k).perms,
        flushed = sortGrid(flushSubnormals(v), rows, cols, k).perms;
      assert(exact.some((p, i) => p !== flushed[i]), `k ${k}: flushing changes the CPU's permutation`);
      await sameAsCpu(v, rows, cols, k, `subnormals k ${k}`);
    }
    // and the sort kernel has no float arithmetic to flush: f32 appears only in the shared Params block
    assertEquals(SORT.match(/\bf32\b/g)?.length, 1);
    assert(!/bitcast<f32>/.test(SORT), "no float reinterpretation in the sort");
    (await gpu()).destroy();
  },
});
