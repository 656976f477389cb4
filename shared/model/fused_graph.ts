/**
 * The fused Llama graphs (`fused: true` of `buildPrefillGraph` / `buildDecodeGraph` in
 * `llama_graph.ts`, whose module doc lists the inputs and outputs, the same here).
 *
 * Per layer: one RMSNorm kernel that also does the previous residual add
 * (SkipSimplifiedLayerNormalization), one Gemm for Q|K|V (Wq and bq pre-scaled by
 * 1/sqrt(hd): RoPE is linear, so the scores equal the unfused q·kᵀ·scale), a Split, one
 * RotaryEmbedding each for Q and K, the attention of the standard graphs, SwiGLU with
 * QuickGelu as SiLU.
 * @module
 */
import type { GraphBuilder } from "../onnx/mod.ts";
import type { ModelConfig } from "./config.ts";
import { linear } from "./graph_ops.ts";
import { addRmsNorm, rmsNormFused, ropeCache, ropeFused, swigluFused } from "./fused_ops.ts";
import {
  attentionProbs,
  type Base,
  base,
  decodeAttention,
  decodeInputs,
  decodeOutputs,
  dimsOf,
  type GraphOptions,
  type HostResult,
  kvMetric,
  kvResults,
  lastRow,
  layerGroup,
  prefillInputs,
  prefillOutputs,
} from "./graph_parts.ts";
import { ropeInvFreq } from "./rope.ts";
import type { LayerWeights, LlamaWeights } from "./weights.ts";

/** Q|K|V weights (qDim + 2 kvDim, dim) and bias (or none), Q scaled by `scale`. */
function qkvWeights(l: LayerWeights, scale: number, qDim: number, kvDim: number) {
  const dim = l.wq.length / qDim;
  const wqkv = new Float32Array((qDim + 2 * kvDim) * dim);
  wqkv.set(l.wq.map((v) => Math.fround(v * scale)));
  wqkv.set(l.wk, qDim * dim);
  wqkv.set(l.wv, (qDim + kvDim) * dim);
  if (!l.bq && !l.bk && !l.bv) return { wqkv };
  const bqkv = new Float32Array(qDim + 2 * kvDim);
  if (l.bq) bqkv.set(l.bq.map((v) => Math.fround(v * scale)));
  if (l.bk) bqkv.set(l.bk, qDim);
  if (l.bv) bqkv.set(l.bv, qDim + kvDim);
  return { wqkv, bqkv };
}

interface FusedLayer {
  attnNorm: string;
  ffnNorm: string;
  wqkv: string;
  bqkv?: string;
  wo: string;
  w1: string;
  w2: string;
  w3: string;
}

function fusedLayer(g: GraphBuilder, c: ModelConfig, l: number, lw: LayerWeights): FusedLayer {
  const { dim, hiddenDim, qDim, kvDim } = dimsOf(c);
  const p = `layers.${l}.`;
  const init = (n: string, shape: number[], a: Float32Array) => g.initializer(p + n, "float32", shape, a);
  const { wqkv, bqkv } = qkvWeights(lw, 1 / Math.sqrt(c.headDim), qDim, kvDim);
  return {
    attnNorm: init("attn_norm", [dim], lw.attnNorm),
    ffnNorm: init("ffn_norm", [dim], lw.ffnNorm),
    wqkv: init("wqkv", [qDim + 2 * kvDim, dim], wqkv),
    bqkv: bqkv && init("bqkv", [qDim + 2 * kvDim], bqkv),
    wo: init("wo", [dim, qDim], lw.wo),
    w1: init("w1", [hiddenDim, dim], lw.w1),
    w2: init("w2", [dim, hiddenDim], lw.w2),
    w3: init("w3", [hiddenDim, dim], lw.w3),
  };
}

interface FusedShared extends Base {
  cos: string; // (maxSeqLen, hd/2)
  sin: string;
}

function fusedShared(name: string, c: ModelConfig, w: LlamaWeights): FusedShared {
  const b = base(name, c, w);
  const cache = ropeCache(ropeInvFreq(c.headDim, c.ropeTheta), c.maxSeqLen);
  const half = c.headDim / 2;
  return Object.assign(b, { // onto `b` itself: spreading it would make every weight an initializer
    cos: b.g.initializer("rope_cos", "float32", [c.maxSeqLen, half], cache.cos),
    sin: b.g.initializer("rope_sin", "float32", [c.maxSeqLen, half], cache.sin),
  });
}

/**
 * The layers' shared part around attention: x (rows, dim) is the residual stream before
 * layer l's attention, `pending` what still has to be added to it (the previous FFN
 * output). Returns Q (1|B, T|1, qDim) after RoPE, K and V before the head split, and
 * closes the layer with `finish(attention output (rows, qDim))`.
 */
function fusedBlock(
  s: FusedShared,
  c: ModelConfig,
  args: { x: string; pending?: string; p: FusedLayer; positionIds: string; shape3: number[] },
) {
  const { g } = s;
  const { qDim, kvDim } = dimsOf(c);
  const { p } = args;
  const norm = (weight: string) => ({ weight, eps: c.normEps });
  let x = args.x, h: string;
  if (args.pending) ({ sum: x, normed: h } = addRmsNorm(g, x, args.pending, norm(p.attnNorm)));
  else h = rmsNormFused(g, x, p.attnNorm, c.normEps);
  const qkv = g.node("Reshape", [linear(g, h, p.wqkv, p.bqkv), g.int64s(args.shape3)]); // (b, t, qDim + 2 kvDim)
  const [q, k, v] = g.nodeN("Split", [qkv, g.int64s([qDim, kvDim, kvDim])], 3, { axis: 2 });
  const cache = { cos: s.cos, sin: s.sin };
  const qr = ropeFused(g, q, args.positionIds, { ...cache, nHeads: c.nHeads });
  const kr = ropeFused(g, k, args.positionIds, { ...cache, nHeads: c.nKvHeads });
  const finish = (attn: string) => {
    const a = addRmsNorm(g, x, linear(g, attn, p.wo), norm(p.ffnNorm));
    return { x: a.sum, pending: swigluFused(g, a.normed, p.w1, p.w2, p.w3) };
  };
  return { q: qr, k: kr, v, finish };
}

/** The prefill graph, fused. */
export function buildPrefillFused(c: ModelConfig, w: LlamaWeights, opts: GraphOptions): GraphBuilder {
  const layers = layerGroup(c, opts);
  const s = fusedShared("llama_prefill", c, w);
  const { g } = s;
  const { nHeads, nKvHeads, headDim: hd } = c;
  const { ids, hidden, positions, bias, metricStart } = prefillInputs(g, layers, c.dim);
  const positionIds = g.node("Unsqueeze", [positions, g.int64s([0])]); // (1, T)
  let x = hidden ?? g.node("Gather", [s.emb, ids!], { axis: 0 }); // (T, dim)
  let pending: string | undefined;
  const kvs: HostResult[] = [];
  const metrics: HostResult[] = [];
  for (let l = layers.from; l < layers.to; l++) {
    const p = fusedLayer(g, c, l, w.layers[l]);
    const b = fusedBlock(s, c, { x, pending, p, positionIds, shape3: [1, -1, (nHeads + 2 * nKvHeads) * hd] });
    // (1, T, n·hd) → (nKv, n/nKv, T, hd)
    const heads = (y: string, n: number, perm: number[]) =>
      g.node("Transpose", [g.node("Reshape", [y, g.int64s([-1, nKvHeads, n / nKvHeads, hd])])], { perm });
    const qg = heads(b.q, nHeads, [1, 2, 0, 3]); // (nKv, g, T, hd), pre-scaled
    const k4 = g.node("Reshape", [b.k, g.int64s([-1, nKvHeads, 1, hd])]); // (T, nKv, 1, hd)
    const k = g.node("Transpose", [k4], { perm: [1, 2, 0, 3] }); // (nKv, 1, T, hd)
    const kT = g.node("Transpose", [k4], { perm: [1, 2, 3, 0] }); // (nKv, 1, hd, T)
    const v = heads(b.v, nKvHeads, [1, 2, 0, 3]); // (nKv, 1, T, hd)
    kvs.push(...kvResults(l, [k, v], [nKvHeads, 1, "T", hd]));
    const probs = attentionProbs(g, qg, kT, bias);
    const ctx = g.node("MatMul", [probs, v]); // (nKv, g, T, hd)
    const merged = g.node("Reshape", [
      g.node("Transpose", [ctx], { perm: [2, 0, 1, 3] }), // (T, nKv, g, hd)
      g.int64s([-1, nHeads * hd]),
    ]);
    ({ x, pending } = b.finish(merged));
    metrics.push({ value: kvMetric(g, probs, metricStart), shape: [nKvHeads, "T"], name: `metric_${l}` });
  }
  // a group before the last hands on the residual stream with its pending FFN output added
  const head = layers.last
    ? {
      logits: linear(
        g,
        lastRow(g, addRmsNorm(g, x, pending!, { weight: s.finalNorm, eps: c.normEps }).normed),
        s.cls,
      ),
    }
    : { x: g.node("Add", [x, pending!]) };
  prefillOutputs(g, c, layers, head, [...metrics, ...kvs], opts);
  return g;
}

/** The batched one-token decode graph, fused. */
export function buildDecodeFused(
  c: ModelConfig,
  w: LlamaWeights,
  opts: GraphOptions & { present?: boolean },
) {
  const s = fusedShared("llama_decode", c, w);
  const { g } = s;
  const { nHeads, nKvHeads, headDim: hd } = c;
  const inputs = decodeInputs(g, c);
  const positionIds = g.node("Unsqueeze", [inputs.positions, g.int64s([1])]); // (B, 1)
  let x = g.node("Gather", [s.emb, inputs.ids], { axis: 0 }); // (B, dim)
  let pending: string | undefined;
  const present: [string, string][] = [];
  const kvs: HostResult[] = [];
  const probs: string[] = [];
  for (let l = 0; l < c.nLayers; l++) {
    const { pastK, pastV, bias } = inputs.layers[l];
    const p = fusedLayer(g, c, l, w.layers[l]);
    const b = fusedBlock(s, c, { x, pending, p, positionIds, shape3: [-1, 1, (nHeads + 2 * nKvHeads) * hd] });
    const kvShape = g.int64s([-1, nKvHeads, 1, hd]);
    const k = g.node("Reshape", [b.k, kvShape]); // (B, nKv, 1, hd)
    const v = g.node("Reshape", [b.v, kvShape]);
    kvs.push(...kvResults(l, [k, v], ["B", nKvHeads, 1, hd], "new_"));
    const keys = g.node("Concat", [pastK, k], { axis: 2 }); // (B, nKv, P+1, hd)
    const values = g.node("Concat", [pastV, v], { axis: 2 });
    present.push([keys, values]);
    const attn = decodeAttention(g, c, { q: b.q, keys, values, bias }); // Q pre-scaled
    probs.push(attn.probs);
    ({ x, pending } = b.finish(attn.context));
  }
  const normed = addRmsNorm(g, x, pending!, { weight: s.finalNorm, eps: c.normEps }).normed;
  decodeOutputs(g, c, { logits: linear(g, normed, s.cls), kvs, present, probs }, opts);
  return g;
}
