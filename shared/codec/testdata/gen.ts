/**
 * Deterministic inputs for the codec tests: a seeded PRNG and KV-like frames (smooth
 * per-channel structure plus noise, optionally salted with special values).
 * @module
 */
import { type Dtype, fromFloat32, type Tensor } from "../../dtype/mod.ts";

/** The project's seeded PRNG (mulberry32), under the name the codec tests use. */
import { seededRng as rng } from "../../model/sampling/rng.ts";
export { rng };

/** A `[rows, cols]` KV-like frame: per-channel offsets and scales, a slow drift over tokens, noise. */
export function kvFrame(rows: number, cols: number, dtype: Dtype, seed: number, specials = false): Tensor {
  const r = rng(seed);
  const off = Float32Array.from({ length: cols }, () => (r() - 0.5) * 4);
  const scale = Float32Array.from({ length: cols }, () => 0.2 + r() * (r() < 0.1 ? 8 : 1));
  const v = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      v[i * cols + j] = off[j] + scale[j] * (Math.sin(i * 0.05 + j) * 0.5 + (r() - 0.5));
    }
  }
  if (specials && v.length > 0) {
    const pool = [NaN, Infinity, -Infinity, -0, 0, 1e-40, dtype === "f32" ? 3e38 : 6e4];
    for (let s = 0; s < Math.max(1, v.length >> 5); s++) {
      v[Math.floor(r() * v.length)] = pool[s % pool.length];
    }
  }
  return fromFloat32(v, [rows, cols], dtype);
}
