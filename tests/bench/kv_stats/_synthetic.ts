/**
 * Frames with known structure for the statistics' tests: Gaussian noise, a fixed channel order,
 * independently shuffled orders, and channels planted larger than the rest.
 * @module
 */
import { seededRng } from "../../../shared/model/sampling/rng.ts";
import type { TokenChannels } from "./frame.ts";

/** A standard normal sampler (Box–Muller) from a seeded generator. */
export function gaussian(seed: number): () => number {
  const u = seededRng(seed);
  return () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
}

/** `rows` × `cols` of `value(t, c)`. */
export function frameOf(rows: number, cols: number, value: (t: number, c: number) => number): TokenChannels {
  const data = new Float32Array(rows * cols);
  for (let t = 0; t < rows; t++) for (let c = 0; c < cols; c++) data[t * cols + c] = value(t, c);
  return { rows, cols, data };
}

/** Independent N(0, 1) values, times `scale[c]` per channel when given. */
export function noiseFrame(
  rows: number,
  cols: number,
  seed: number,
  scale?: (t: number, c: number) => number,
) {
  const g = gaussian(seed);
  return frameOf(rows, cols, (t, c) => g() * (scale?.(t, c) ?? 1));
}

/** Every token's channels a fresh random permutation of 0 … cols−1 (orders independent across tokens). */
export function shuffledFrame(rows: number, cols: number, seed: number): TokenChannels {
  const u = seededRng(seed);
  const data = new Float32Array(rows * cols);
  for (let t = 0; t < rows; t++) {
    const p = Array.from({ length: cols }, (_, c) => c);
    for (let i = cols - 1; i > 0; i--) {
      const j = Math.floor(u() * (i + 1));
      [p[i], p[j]] = [p[j], p[i]];
    }
    data.set(p, t * cols);
  }
  return { rows, cols, data };
}
