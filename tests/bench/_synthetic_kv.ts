/**
 * Llama-3-8B-shaped KV (32 layers × 8 KV heads × 128, as the hand-off bench's W2 asks) with
 * values drawn to match a real model's per-channel statistics: for each (layer, KV head,
 * channel) of the real KV, its mean, standard deviation and lag-1 autocorrelation along tokens;
 * the synthetic channel is an AR(1) process with those three numbers (a real (layer, head,
 * channel) chosen cyclically, its scale jittered so no two channels are copies). The metric is
 * a recency ramp with noise, so eviction has something to rank.
 * @module
 */
import type { PrefillKv } from "../../shared/pipeline/compress_stage.ts";
import { seededRng } from "../../shared/model/sampling/rng.ts";

/** Per-channel statistics of real KV: `[nLayers][nKvHeads][headDim]` each, K and V apart. */
export interface ChannelStats {
  nLayers: number;
  nKvHeads: number;
  headDim: number;
  mean: { k: Float32Array; v: Float32Array };
  std: { k: Float32Array; v: Float32Array };
  rho: { k: Float32Array; v: Float32Array };
}

/** Fits {@linkcode ChannelStats} to a prefill output (`[nKvHeads, nPos, headDim]` per layer). */
export function fitChannelStats(kv: PrefillKv): ChannelStats {
  const { nLayers, nKvHeads, nPos, headDim } = kv;
  const n = nLayers * nKvHeads * headDim;
  const s = {
    mean: { k: new Float32Array(n), v: new Float32Array(n) },
    std: { k: new Float32Array(n), v: new Float32Array(n) },
    rho: { k: new Float32Array(n), v: new Float32Array(n) },
  };
  for (let l = 0; l < nLayers; l++) {
    for (const role of ["k", "v"] as const) {
      const x = role === "k" ? kv.layers[l].keys : kv.layers[l].values;
      for (let h = 0; h < nKvHeads; h++) {
        for (let c = 0; c < headDim; c++) {
          let sum = 0, sq = 0, lag = 0, prev = 0;
          for (let p = 0; p < nPos; p++) {
            const v = x[(h * nPos + p) * headDim + c];
            sum += v;
            sq += v * v;
            if (p > 0) lag += v * prev;
            prev = v;
          }
          const m = sum / nPos;
          const varc = Math.max(1e-12, sq / nPos - m * m);
          const cov = lag / Math.max(1, nPos - 1) - m * m;
          const i = (l * nKvHeads + h) * headDim + c;
          s.mean[role][i] = m;
          s.std[role][i] = Math.sqrt(varc);
          s.rho[role][i] = Math.max(-0.99, Math.min(0.999, cov / varc));
        }
      }
    }
  }
  return { nLayers, nKvHeads, headDim, ...s };
}

/** 64K standard normal samples, indexed by a fast PRNG instead of drawing each one. */
function normalTable(seed: number): Float32Array {
  const r = seededRng(seed);
  const t = new Float32Array(1 << 16);
  for (let i = 0; i < t.length; i += 2) {
    const u = Math.max(1e-12, r()), v = r();
    const m = Math.sqrt(-2 * Math.log(u));
    t[i] = m * Math.cos(2 * Math.PI * v);
    t[i + 1] = m * Math.sin(2 * Math.PI * v);
  }
  return t;
}

export interface SyntheticShape {
  nLayers: number;
  nKvHeads: number;
  headDim: number;
  nPos: number;
}

/** Llama-3-8B's KV shape at `nPos` tokens. */
export const llama3_8b = (nPos: number): SyntheticShape => ({ nLayers: 32, nKvHeads: 8, headDim: 128, nPos });

/** Synthetic KV of `shape` following `stats` (see the module comment). */
export function syntheticKv(shape: SyntheticShape, stats: ChannelStats, seed = 1): PrefillKv {
  const { nLayers, nKvHeads, headDim, nPos } = shape;
  const table = normalTable(seed);
  let st = (seed * 2654435761) >>> 0 || 1;
  const layers: PrefillKv["layers"] = [];
  for (let l = 0; l < nLayers; l++) {
    const keys = new Float32Array(nKvHeads * nPos * headDim);
    const values = new Float32Array(nKvHeads * nPos * headDim);
    for (const [role, out] of [["k", keys], ["v", values]] as const) {
      for (let h = 0; h < nKvHeads; h++) {
        for (let c = 0; c < headDim; c++) {
          const src = ((l % stats.nLayers) * stats.nKvHeads + (h % stats.nKvHeads)) * stats.headDim +
            (c % stats.headDim);
          const jitter = 0.8 + 0.45 * (((l * 131 + h * 17 + c * 7) % 97) / 97);
          const m = stats.mean[role][src] * jitter, sd = stats.std[role][src] * jitter;
          const rho = stats.rho[role][src], inno = Math.sqrt(1 - rho * rho);
          let z = 0;
          for (let p = 0; p < nPos; p++) {
            st ^= st << 13, st ^= st >>> 17, st ^= st << 5; // xorshift32
            z = rho * z + inno * table[st & 0xffff];
            out[(h * nPos + p) * headDim + c] = m + sd * z;
          }
        }
      }
    }
    layers.push({ keys, values });
  }
  const r = seededRng(seed + 1);
  const metric = new Float32Array(nLayers * nKvHeads * nPos);
  for (let i = 0; i < metric.length; i++) {
    const p = i % nPos;
    metric[i] = (r() ** 4) * (0.2 + (p / nPos) ** 2);
  }
  return { nLayers, nKvHeads, nPos, headDim, layers, metric };
}
