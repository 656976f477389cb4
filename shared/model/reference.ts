/**
 * A slow, plain-TypeScript forward pass of one token, written the way llama2.c's `run.c`
 * reads, over the runtime weight layout (rotate-half RoPE). Tests use it as ground truth
 * for the ONNX graphs; each KV head gets its own explicit list of cached vectors, so an
 * evicted KV is simply absent. Not for production use.
 * @module
 */
import type { ModelConfig } from "./config.ts";
import { ropeInvFreq } from "./rope.ts";
import type { LlamaWeights } from "./weights.ts";

/** Cached vectors of one KV head: keys (after RoPE) and values, each headDim long. */
export interface HeadCache {
  keys: Float32Array[];
  values: Float32Array[];
}

/** Result of one reference step. */
export interface ReferenceStep {
  logits: Float32Array; // (vocab)
  newKeys: Float32Array[][]; // [layer][kvHead] (headDim), after RoPE
  newValues: Float32Array[][];
  probs: Float32Array[][]; // [layer][queryHead] (n cached + 1): attention of this token
}

function matvec(w: Float32Array, x: Float32Array, out: number, bias?: Float32Array): Float32Array {
  const n = x.length;
  const y = new Float32Array(out);
  for (let i = 0; i < out; i++) {
    let s = bias ? bias[i] : 0;
    for (let j = 0; j < n; j++) s += w[i * n + j] * x[j];
    y[i] = s;
  }
  return y;
}

function rmsnorm(x: Float32Array, w: Float32Array, eps: number): Float32Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const inv = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => v * inv * w[i]);
}

function rope(v: Float32Array, pos: number, invFreq: Float32Array): void {
  const half = invFreq.length;
  for (let j = 0; j < half; j++) {
    // the angle in fp32, as transformers, infra/train/train.py and both graphs take it: in double
    // it differs by up to half an fp32 step of the position (1.2e-4 rad at 4095)
    const a = Math.fround(pos * invFreq[j]);
    const [c, s] = [Math.cos(a), Math.sin(a)];
    const [x1, x2] = [v[j], v[j + half]];
    v[j] = x1 * c - x2 * s;
    v[j + half] = x2 * c + x1 * s;
  }
}

/** Runs `token` at `pos` against `cache[layer][kvHead]` (not modified). */
export function referenceStep(
  c: ModelConfig,
  w: LlamaWeights,
  input: { token: number; pos: number; cache: HeadCache[][] },
): ReferenceStep {
  const { dim, headDim: hd, nHeads, nKvHeads } = c;
  const invFreq = ropeInvFreq(hd, c.ropeTheta);
  const group = nHeads / nKvHeads;
  let x = w.tokEmb.slice(input.token * dim, (input.token + 1) * dim);
  const newKeys: Float32Array[][] = [];
  const newValues: Float32Array[][] = [];
  const probsOut: Float32Array[][] = [];
  for (let l = 0; l < c.nLayers; l++) {
    const L = w.layers[l];
    const h = rmsnorm(x, L.attnNorm, c.normEps);
    const q = matvec(L.wq, h, nHeads * hd, L.bq);
    const k = matvec(L.wk, h, nKvHeads * hd, L.bk);
    const v = matvec(L.wv, h, nKvHeads * hd, L.bv);
    const ks: Float32Array[] = [];
    const vs: Float32Array[] = [];
    for (let kh = 0; kh < nKvHeads; kh++) {
      const kk = k.slice(kh * hd, (kh + 1) * hd);
      rope(kk, input.pos, invFreq);
      ks.push(kk);
      vs.push(v.slice(kh * hd, (kh + 1) * hd));
    }
    newKeys.push(ks);
    newValues.push(vs);
    const att = new Float32Array(nHeads * hd);
    const layerProbs: Float32Array[] = [];
    for (let qh = 0; qh < nHeads; qh++) {
      const kh = Math.floor(qh / group);
      const qq = q.slice(qh * hd, (qh + 1) * hd);
      rope(qq, input.pos, invFreq);
      const keys = [...input.cache[l][kh].keys, ks[kh]];
      const values = [...input.cache[l][kh].values, vs[kh]];
      const scores = keys.map((kv) => {
        let s = 0;
        for (let i = 0; i < hd; i++) s += qq[i] * kv[i];
        return s / Math.sqrt(hd);
      });
      const m = Math.max(...scores);
      const e = scores.map((s) => Math.exp(s - m));
      const sum = e.reduce((a, b) => a + b, 0);
      const p = Float32Array.from(e, (v) => v / sum);
      layerProbs.push(p);
      for (let t = 0; t < values.length; t++) {
        for (let i = 0; i < hd; i++) att[qh * hd + i] += p[t] * values[t][i];
      }
    }
    probsOut.push(layerProbs);
    const o = matvec(L.wo, att, dim);
    x = x.map((v, i) => v + o[i]);
    const h2 = rmsnorm(x, L.ffnNorm, c.normEps);
    const g1 = matvec(L.w1, h2, c.hiddenDim);
    const g3 = matvec(L.w3, h2, c.hiddenDim);
    const act = g1.map((g, i) => (g / (1 + Math.exp(-g))) * g3[i]);
    const down = matvec(L.w2, act, dim);
    x = x.map((v, i) => v + down[i]);
  }
  const logits = matvec(w.classifier ?? w.tokEmb, rmsnorm(x, w.finalNorm, c.normEps), c.vocabSize);
  return { logits, newKeys, newValues, probs: probsOut };
}
