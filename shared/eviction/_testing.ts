/**
 * Test helpers for the planners: a seeded generator, the invariants every plan must hold,
 * and a reader for the fp32 `.npy` KV samples.
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import type { EvictionPlan } from "./types.ts";

/** A seeded uniform generator in [0, 1) (LCG; enough for test data). */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Heavy-tailed random metric, like squared attention: most values tiny, a few large. */
export function randomMetric(n: number, seed: number): Float32Array {
  const rnd = lcg(seed);
  return Float32Array.from({ length: n }, () => rnd() ** 6);
}

/**
 * Asserts what every plan promises: kept positions ascending, unique and in range; the
 * sink and protected window kept; whole blocks evicted; at least one block kept per head;
 * counts and fractions consistent.
 */
export function assertPlanInvariants(
  plan: EvictionPlan,
  o: { blockSize: number; protectedWindow: number; sink: number },
): void {
  const { nLayers, nKvHeads, nPos } = plan;
  assertEquals(plan.kept.length, nLayers * nKvHeads);
  assertEquals(plan.totalCount, nLayers * nKvHeads * nPos);
  let total = 0;
  const perLayer = new Array<number>(nLayers).fill(0);
  for (let h = 0; h < plan.kept.length; h++) {
    const k = plan.kept[h];
    for (let i = 1; i < k.length; i++) assert(k[i - 1] < k[i], `head ${h}: kept not strictly ascending`);
    assert(k.length === 0 || (k[0] >= 0 && k[k.length - 1] < nPos), `head ${h}: position out of range`);
    const set = new Set(k);
    for (let p = 0; p < Math.min(o.sink, nPos); p++) assert(set.has(p), `head ${h}: sink ${p} evicted`);
    for (let p = Math.max(0, nPos - o.protectedWindow); p < nPos; p++) {
      assert(set.has(p), `head ${h}: protected ${p} evicted`);
    }
    assertEquals((nPos - k.length) % o.blockSize, 0, `head ${h}: evicted a partial block`);
    assert(k.length >= Math.min(nPos, o.blockSize), `head ${h}: fewer than one block left`);
    total += k.length;
    perLayer[Math.floor(h / nKvHeads)] += k.length;
  }
  assertEquals(plan.keptCount, total);
  assertEquals(plan.keptFractionPerLayer, perLayer.map((c) => c / (nKvHeads * nPos)));
}

/** Reads a little-endian fp32 C-order `.npy` (version 1) file; returns shape and data. */
export function readNpyF32(path: string): { shape: number[]; data: Float32Array } {
  const bytes = Deno.readFileSync(path);
  const headerLen = bytes[8] | (bytes[9] << 8);
  const header = new TextDecoder().decode(bytes.subarray(10, 10 + headerLen));
  if (!header.includes("'<f4'") || header.includes("'fortran_order': True")) {
    throw new TypeError(`${path}: not little-endian fp32 C order: ${header}`);
  }
  const shape = header.match(/\(([^)]*)\)/)![1].split(",").filter((s) => s.trim()).map(Number);
  const start = 10 + headerLen;
  const data = new Float32Array(bytes.slice(start).buffer);
  assertEquals(data.length, shape.reduce((a, b) => a * b, 1), `${path}: size`);
  return { shape, data };
}
