/**
 * The planners on real KV caches (stories260K, ../shared/kv-samples). Queries are not in
 * the samples, so the metric uses each position's key as its query (a proxy with the
 * right geometry: post-RoPE vectors of the same head). Kept metric mass and the error of
 * the last query's attention output are compared across KV-Compress, uniform and recency.
 */
import { assert } from "@std/assert";
import { KV_SAMPLES_DIR } from "../../tests/_harness/paths.ts";
import { attentionMetric } from "./attention_metric.ts";
import { applyPlan } from "./apply_plan.ts";
import { planKvCompress } from "./plan_kv_compress.ts";
import { planRecency } from "./plan_recency.ts";
import { planUniform } from "./plan_uniform.ts";
import { assertPlanInvariants, readNpyF32 } from "./_testing.ts";
import type { EvictionPlan } from "./types.ts";

const W = 32;

/** `[layer, pos, head, hd]` to per-layer `[head, pos, hd]`. */
function toLayers(t: { shape: number[]; data: Float32Array }): Float32Array[] {
  const [nL, nP, nH, hd] = t.shape;
  return Array.from({ length: nL }, (_, l) => {
    const out = new Float32Array(nH * nP * hd);
    for (let p = 0; p < nP; p++) {
      for (let h = 0; h < nH; h++) {
        const src = ((l * nP + p) * nH + h) * hd;
        out.set(t.data.subarray(src, src + hd), (h * nP + p) * hd);
      }
    }
    return out;
  });
}

function sample(i: number) {
  const name = `${KV_SAMPLES_DIR}/stories260K/sample-0${i}`;
  const k = readNpyF32(`${name}.k.npy`);
  const v = readNpyF32(`${name}.v.npy`);
  const [nLayers, nPos, nKvHeads, headDim] = k.shape;
  const keys = toLayers(k);
  const values = toLayers(v);
  const metric = new Float32Array(nLayers * nKvHeads * nPos);
  for (let l = 0; l < nLayers; l++) {
    const q = new Float32Array(nKvHeads * W * headDim);
    for (let h = 0; h < nKvHeads; h++) {
      q.set(keys[l].subarray((h * nPos + nPos - W) * headDim, (h * nPos + nPos) * headDim), h * W * headDim);
    }
    metric.set(
      attentionMetric(q, keys[l], { nHeads: nKvHeads, nKvHeads, nPos, headDim }),
      l * nKvHeads * nPos,
    );
  }
  return { shape: { nLayers, nKvHeads, nPos }, headDim, keys, values, metric };
}

/** Mean over (layer, head) of the relative L2 error of the last proxy query's attention output. */
function outputError(s: ReturnType<typeof sample>, plan: EvictionPlan): number {
  const { nLayers, nKvHeads, nPos } = s.shape;
  const hd = s.headDim;
  let err = 0;
  for (let l = 0; l < nLayers; l++) {
    const kept = applyPlan({ keys: s.keys[l], values: s.values[l] }, plan, l, hd);
    for (let h = 0; h < nKvHeads; h++) {
      const q = s.keys[l].subarray((h * nPos + nPos - 1) * hd, (h * nPos + nPos) * hd);
      const attend = (k: Float32Array, v: Float32Array) => {
        const n = k.length / hd;
        const w = Array.from({ length: n }, (_, p) => {
          let d = 0;
          for (let j = 0; j < hd; j++) d += q[j] * k[p * hd + j];
          return d / Math.sqrt(hd);
        });
        const mx = Math.max(...w);
        const e = w.map((x) => Math.exp(x - mx));
        const z = e.reduce((a, b) => a + b);
        const o = new Float64Array(hd);
        for (let p = 0; p < n; p++) for (let j = 0; j < hd; j++) o[j] += (e[p] / z) * v[p * hd + j];
        return o;
      };
      const full = attend(
        s.keys[l].subarray(h * nPos * hd, (h + 1) * nPos * hd),
        s.values[l].subarray(h * nPos * hd, (h + 1) * nPos * hd),
      );
      const part = attend(kept.keys[h], kept.values[h]);
      let num = 0, den = 0;
      for (let j = 0; j < hd; j++) {
        num += (full[j] - part[j]) ** 2;
        den += full[j] ** 2;
      }
      err += Math.sqrt(num / den);
    }
  }
  return err / (nLayers * nKvHeads);
}

function keptMass(metric: Float32Array, plan: EvictionPlan): number {
  let m = 0;
  plan.kept.forEach((k, h) => k.forEach((p) => (m += metric[h * plan.nPos + p])));
  return m;
}

Deno.test("planKvCompress() on real KV samples keeps more attention than the baselines", () => {
  const rows: string[] = [];
  for (const i of [0, 3]) {
    const s = sample(i);
    for (const rate of [2, 4]) {
      const opts = { rate, protectedWindow: 32 };
      const plans = {
        kvc: planKvCompress(s.metric, s.shape, opts),
        uni: planUniform(s.metric, s.shape, opts),
        rec: planRecency(s.metric, s.shape, opts),
      };
      for (const p of Object.values(plans)) {
        assertPlanInvariants(p, { blockSize: 16, protectedWindow: 32, sink: 4 });
      }
      const counts = plans.kvc.kept.map((k) => k.length);
      assert(Math.max(...counts) - Math.min(...counts) >= 64, `rates barely vary: ${counts}`);
      const mass = Object.values(plans).map((p) => keptMass(s.metric, p));
      const err = Object.values(plans).map((p) => outputError(s, p));
      rows.push(
        `sample ${i} rate ${rate}: kept ${plans.kvc.keptCount}/${plans.uni.keptCount}/${plans.rec.keptCount} mass ${
          mass.map((x) => x.toFixed(2))
        } err ${err.map((x) => x.toFixed(4))}`,
      );
      assert(mass[0] >= mass[1] && mass[1] >= mass[2], rows.at(-1));
      assert(err[0] <= err[1] && err[0] <= err[2], rows.at(-1));
    }
  }
  console.log(rows.join("\n"));
});
