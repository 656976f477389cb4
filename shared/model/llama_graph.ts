/**
 * Builds the two ONNX graphs of a Llama-family model from standard ops (no fused
 * attention), so that per-head masks and attention probabilities stay visible.
 *
 * Prefill (one sequence of T tokens)
 *   inputs:  input_ids int64 (T), positions int64 (T), attn_bias f32 (T, T) (0 or -1e9),
 *            metric_start int64 (1) = T - w
 *   results: logits (1, vocab) at the last position; per layer l: key_l, value_l
 *            (nKv, T, hd), keys after RoPE; metric_l (nKv, T) = Σ over the last w queries
 *            and the g query heads of each KV head of softmax-probability².
 * Decode (B sequences, one new token each)
 *   inputs:  input_ids int64 (B), positions int64 (B); per layer l: past_key_l,
 *            past_value_l (B, nKv, P_l, hd), attn_bias_l f32 (B, nKv, 1, P_l + 1)
 *   results: logits (B, vocab); per layer l: new_key_l, new_value_l (B, nKv, hd)
 *   with `present`, extra outputs after those: per layer l: present_key_l, present_value_l
 *            (B, nKv, P_l + 1, hd), the past with the new token appended (what a kept cache
 *            feeds to the next step; stays on the device)
 *
 * The results bound for the host leave the graph as ONE flat float32 output, `packed`, each
 * flattened and concatenated in the order above (prefill: logits, metric_0..metric_{L-1},
 * then key_l, value_l per layer; decode: logits, then new_key_l, new_value_l per layer), so
 * a run downloads one buffer on WebGPU, where each downloaded output costs a synchronous
 * round trip (WEBGPU.md). `unpackPrefill` / `unpackDecode` cut it into views. With
 * `perOutput` (benchmarks only) each result is its own output under the names above.
 *
 * With `fused` (what `Model` builds on WebGPU) the same inputs and outputs come from fewer,
 * larger kernels: onnxruntime contrib ops for RMSNorm (+ residual add), RoPE and SiLU, one
 * Gemm for Q|K|V; attention stays the subgraph above (see the section at the end).
 * @module
 */
import { GraphBuilder } from "../onnx/mod.ts";
import type { ModelConfig } from "./config.ts";
import { applyRope, layerInitializers, linear, rmsNorm, ropeTables, swiglu } from "./graph_ops.ts";
import { addRmsNorm, rmsNormFused, ropeCache, ropeFused, swigluFused } from "./fused_ops.ts";
import { ropeInvFreq } from "./rope.ts";
import type { LayerWeights, LlamaWeights } from "./weights.ts";

/** Additive bias for masked positions; exp() of it is exactly 0 in fp32. */
export const MASKED = -1e9;

/** Name of the one output that carries every host-bound result (see module doc). */
export const PACKED = "packed";

/** Options of the graph builders. */
export interface GraphOptions {
  /** Each result as its own output instead of `packed` (benchmarks compare both). */
  perOutput?: boolean;
  /**
   * The same inputs, outputs and math with fewer, larger kernels: onnxruntime contrib ops
   * (`fused_ops.ts`), one Gemm for Q, K and V, the attention scale folded into Wq. For the
   * WebGPU provider, where each kernel launch has a fixed cost; results differ from the
   * standard-op graph by fp32 rounding (the CPU keeps the standard one, bit for bit).
   */
  fused?: boolean;
}

/** Results of the prefill graph for a prompt of T tokens, as views of `packed`. */
export interface PrefillResults {
  logits: Float32Array; // (vocab)
  metric: Float32Array; // (nLayers, nKv, T)
  keys: Float32Array[]; // per layer (nKv, T, hd)
  values: Float32Array[]; // per layer (nKv, T, hd)
}

/** Results of the decode graph for B sequences, as views of `packed`. */
export interface DecodeResults {
  logits: Float32Array; // (B, vocab)
  keys: Float32Array[]; // per layer (B, nKv, hd)
  values: Float32Array[]; // per layer (B, nKv, hd)
}

/** Cuts `packed` into consecutive views of the given lengths; checks the total. */
function cut(packed: Float32Array, lengths: number[], what: string): Float32Array[] {
  const total = lengths.reduce((a, b) => a + b, 0);
  if (packed.length !== total) {
    throw new RangeError(`${what}: packed output has ${packed.length} values, expected ${total}`);
  }
  let at = 0;
  return lengths.map((n) => packed.subarray(at, at += n));
}

/** Views of the prefill graph's `packed` output for T tokens (no copies). */
export function unpackPrefill(packed: Float32Array, c: ModelConfig, T: number): PrefillResults {
  const kv = c.nKvHeads * T * c.headDim;
  const [logits, metric, ...rest] = cut(
    packed,
    [c.vocabSize, c.nLayers * c.nKvHeads * T, ...Array(2 * c.nLayers).fill(kv)],
    "prefill",
  );
  return {
    logits,
    metric,
    keys: rest.filter((_, i) => i % 2 === 0),
    values: rest.filter((_, i) => i % 2 === 1),
  };
}

/** Views of the decode graph's `packed` output for B sequences (no copies). */
export function unpackDecode(packed: Float32Array, c: ModelConfig, B: number): DecodeResults {
  const kv = B * c.nKvHeads * c.headDim;
  const [logits, ...rest] = cut(packed, [B * c.vocabSize, ...Array(2 * c.nLayers).fill(kv)], "decode");
  return {
    logits,
    keys: rest.filter((_, i) => i % 2 === 0),
    values: rest.filter((_, i) => i % 2 === 1),
  };
}

/** One host-bound result of a graph: its value, shape and per-output name. */
interface HostResult {
  value: string;
  shape: (number | string)[];
  name: string;
}

/**
 * Declares the host-bound results of a graph: each as its own output (`perOutput`), or all
 * flattened and concatenated, in the given order, into the one output `packed`.
 */
function hostOutputs(
  g: GraphBuilder,
  results: HostResult[],
  opts: GraphOptions,
): void {
  if (opts.perOutput) {
    for (const r of results) g.output(r.value, "float32", r.shape, r.name);
    return;
  }
  const flat = g.int64s([-1]);
  const parts = results.map((r) => g.node("Reshape", [r.value, flat]));
  g.output(g.node("Concat", parts, { axis: 0 }), "float32", ["N"], PACKED);
}

interface Shared {
  g: GraphBuilder;
  emb: string;
  cls: string;
  finalNorm: string;
  invFreq: string;
  scale: string;
}

function shared(name: string, c: ModelConfig, w: LlamaWeights): Shared {
  const g = new GraphBuilder(name);
  const emb = g.initializer("tok_embeddings", "float32", [c.vocabSize, c.dim], w.tokEmb);
  const cls = w.classifier ? g.initializer("output", "float32", [c.vocabSize, c.dim], w.classifier) : emb;
  const finalNorm = g.initializer("norm", "float32", [c.dim], w.finalNorm);
  const invFreq = g.initializer(
    "rope_inv_freq",
    "float32",
    [c.headDim / 2],
    ropeInvFreq(c.headDim, c.ropeTheta),
  );
  return { g, emb, cls, finalNorm, invFreq, scale: g.scalar(1 / Math.sqrt(c.headDim), "attn_scale") };
}

function dimsOf(c: ModelConfig) {
  return { dim: c.dim, hiddenDim: c.hiddenDim, qDim: c.nHeads * c.headDim, kvDim: c.nKvHeads * c.headDim };
}

/** The prefill graph (see module doc). */
export function buildPrefillGraph(c: ModelConfig, w: LlamaWeights, opts: GraphOptions = {}): GraphBuilder {
  if (opts.fused) return buildPrefillFused(c, w, opts);
  const s = shared("llama_prefill", c, w);
  const { g } = s;
  const { nHeads, nKvHeads, headDim: hd } = c;
  const group = nHeads / nKvHeads;
  const ids = g.input("input_ids", "int64", ["T"]);
  const positions = g.input("positions", "int64", ["T"]);
  const bias = g.input("attn_bias", "float32", ["T", "T"]);
  const metricStart = g.input("metric_start", "int64", [1]);
  const rope = ropeTables(g, positions, s.invFreq); // (T, hd)
  let x = g.node("Gather", [s.emb, ids], { axis: 0 }); // (T, dim)
  const kvs: HostResult[] = [];
  const metrics: HostResult[] = [];
  for (let l = 0; l < c.nLayers; l++) {
    const p = layerInitializers(g, l, w.layers[l], dimsOf(c));
    const h = rmsNorm(g, x, p.attnNorm!, c.normEps);
    const heads = (y: string, n: number) =>
      g.node("Transpose", [g.node("Reshape", [y, g.int64s([-1, n, hd])])], { perm: [1, 0, 2] }); // (n, T, hd)
    const q = applyRope(g, heads(linear(g, h, p.wq!, p.bq), nHeads), rope, hd);
    const k = applyRope(g, heads(linear(g, h, p.wk!, p.bk), nKvHeads), rope, hd);
    const v = heads(linear(g, h, p.wv!, p.bv), nKvHeads);
    kvs.push({ value: k, shape: [nKvHeads, "T", hd], name: `key_${l}` });
    kvs.push({ value: v, shape: [nKvHeads, "T", hd], name: `value_${l}` });
    // Attention per KV group: q (nKv, g, T, hd) against k, v (nKv, 1, T, hd).
    const qg = g.node("Reshape", [q, g.int64s([nKvHeads, group, -1, hd])]);
    const kT = g.node("Unsqueeze", [g.node("Transpose", [k], { perm: [0, 2, 1] }), g.int64s([1])]);
    const scores = g.node("Add", [g.node("Mul", [g.node("MatMul", [qg, kT]), s.scale]), bias]); // (nKv, g, T, T)
    const probs = g.node("Softmax", [scores], { axis: -1 });
    const ctx = g.node("MatMul", [probs, g.node("Unsqueeze", [v, g.int64s([1])])]); // (nKv, g, T, hd)
    const merged = g.node("Reshape", [
      g.node("Transpose", [g.node("Reshape", [ctx, g.int64s([nHeads, -1, hd])])], { perm: [1, 0, 2] }),
      g.int64s([-1, nHeads * hd]),
    ]);
    x = g.node("Add", [x, linear(g, merged, p.wo!)]);
    // KV-Compress metric from the last w queries.
    const last = g.node("Slice", [probs, metricStart, g.int64s([Number.MAX_SAFE_INTEGER]), g.int64s([2])]);
    const metric = g.node("ReduceSum", [g.node("Mul", [last, last]), g.int64s([1, 2])], { keepdims: 0 });
    metrics.push({ value: metric, shape: [nKvHeads, "T"], name: `metric_${l}` });
    x = g.node("Add", [x, swiglu(g, rmsNorm(g, x, p.ffnNorm!, c.normEps), p.w1!, p.w2!, p.w3!)]);
  }
  const lastX = g.node("Slice", [x, g.int64s([-1]), g.int64s([Number.MAX_SAFE_INTEGER]), g.int64s([0])]);
  const logits = linear(g, rmsNorm(g, lastX, s.finalNorm, c.normEps), s.cls);
  hostOutputs(g, [{ value: logits, shape: [1, c.vocabSize], name: "logits" }, ...metrics, ...kvs], opts);
  return g;
}

/** The batched one-token decode graph (see module doc). */
export function buildDecodeGraph(
  c: ModelConfig,
  w: LlamaWeights,
  opts: GraphOptions & { present?: boolean } = {},
): GraphBuilder {
  if (opts.fused) return buildDecodeFused(c, w, opts);
  const s = shared("llama_decode", c, w);
  const { g } = s;
  const { nHeads, nKvHeads, headDim: hd } = c;
  const group = nHeads / nKvHeads;
  const ids = g.input("input_ids", "int64", ["B"]);
  const positions = g.input("positions", "int64", ["B"]);
  const t = ropeTables(g, positions, s.invFreq); // (B, hd)
  const rope = {
    cos: g.node("Unsqueeze", [t.cos, g.int64s([1])]),
    sin: g.node("Unsqueeze", [t.sin, g.int64s([1])]),
  };
  let x = g.node("Gather", [s.emb, ids], { axis: 0 }); // (B, dim)
  const present: [string, string][] = [];
  const kvs: HostResult[] = [];
  for (let l = 0; l < c.nLayers; l++) {
    const pastK = g.input(`past_key_${l}`, "float32", ["B", nKvHeads, `P${l}`, hd]);
    const pastV = g.input(`past_value_${l}`, "float32", ["B", nKvHeads, `P${l}`, hd]);
    const bias = g.input(`attn_bias_${l}`, "float32", ["B", nKvHeads, 1, `P${l}+1`]);
    const p = layerInitializers(g, l, w.layers[l], dimsOf(c));
    const h = rmsNorm(g, x, p.attnNorm!, c.normEps);
    const heads = (y: string, n: number) => g.node("Reshape", [y, g.int64s([-1, n, hd])]); // (B, n, hd)
    const q = applyRope(g, heads(linear(g, h, p.wq!, p.bq), nHeads), rope, hd);
    const k = applyRope(g, heads(linear(g, h, p.wk!, p.bk), nKvHeads), rope, hd);
    const v = heads(linear(g, h, p.wv!, p.bv), nKvHeads);
    kvs.push({ value: k, shape: ["B", nKvHeads, hd], name: `new_key_${l}` });
    kvs.push({ value: v, shape: ["B", nKvHeads, hd], name: `new_value_${l}` });
    const axis2 = g.int64s([2]);
    const keys = g.node("Concat", [pastK, g.node("Unsqueeze", [k, axis2])], { axis: 2 }); // (B, nKv, P+1, hd)
    const values = g.node("Concat", [pastV, g.node("Unsqueeze", [v, axis2])], { axis: 2 });
    present.push([keys, values]);
    const qg = g.node("Reshape", [q, g.int64s([-1, nKvHeads, group, hd])]);
    const kT = g.node("Transpose", [keys], { perm: [0, 1, 3, 2] });
    const scores = g.node("Add", [g.node("Mul", [g.node("MatMul", [qg, kT]), s.scale]), bias]); // (B, nKv, g, P+1)
    const ctx = g.node("MatMul", [g.node("Softmax", [scores], { axis: -1 }), values]); // (B, nKv, g, hd)
    const merged = g.node("Reshape", [ctx, g.int64s([-1, nHeads * hd])]);
    x = g.node("Add", [x, linear(g, merged, p.wo!)]);
    x = g.node("Add", [x, swiglu(g, rmsNorm(g, x, p.ffnNorm!, c.normEps), p.w1!, p.w2!, p.w3!)]);
  }
  const logits = linear(g, rmsNorm(g, x, s.finalNorm, c.normEps), s.cls);
  hostOutputs(g, [{ value: logits, shape: ["B", c.vocabSize], name: "logits" }, ...kvs], opts);
  if (opts.present) {
    present.forEach(([keys, values], l) => {
      g.output(keys, "float32", ["B", nKvHeads, `P${l}+1`, hd], `present_key_${l}`);
      g.output(values, "float32", ["B", nKvHeads, `P${l}+1`, hd], `present_value_${l}`);
    });
  }
  return g;
}

// ---------------------------------------------------------------------------------------
// Fused variants (`fused: true`): same inputs and outputs as above.
//
// Per layer: one RMSNorm kernel that also does the previous residual add
// (SkipSimplifiedLayerNormalization), one Gemm for Q|K|V (Wq and bq pre-scaled by
// 1/sqrt(hd): RoPE is linear, so the scores equal the unfused q·kᵀ·scale), a Split, one
// RotaryEmbedding each for Q and K, the attention as above, SwiGLU with QuickGelu as SiLU.

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

interface FusedShared {
  g: GraphBuilder;
  emb: string;
  cls: string;
  finalNorm: string;
  cos: string;
  sin: string;
}

function fusedShared(name: string, c: ModelConfig, w: LlamaWeights): FusedShared {
  const g = new GraphBuilder(name);
  const emb = g.initializer("tok_embeddings", "float32", [c.vocabSize, c.dim], w.tokEmb);
  const cls = w.classifier ? g.initializer("output", "float32", [c.vocabSize, c.dim], w.classifier) : emb;
  const finalNorm = g.initializer("norm", "float32", [c.dim], w.finalNorm);
  const cache = ropeCache(ropeInvFreq(c.headDim, c.ropeTheta), c.maxSeqLen);
  const half = c.headDim / 2;
  return {
    g,
    emb,
    cls,
    finalNorm,
    cos: g.initializer("rope_cos", "float32", [c.maxSeqLen, half], cache.cos), // (maxSeqLen, hd/2)
    sin: g.initializer("rope_sin", "float32", [c.maxSeqLen, half], cache.sin),
  };
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

function buildPrefillFused(c: ModelConfig, w: LlamaWeights, opts: GraphOptions): GraphBuilder {
  const s = fusedShared("llama_prefill", c, w);
  const { g } = s;
  const { nHeads, nKvHeads, headDim: hd } = c;
  const ids = g.input("input_ids", "int64", ["T"]);
  const positions = g.input("positions", "int64", ["T"]);
  const bias = g.input("attn_bias", "float32", ["T", "T"]);
  const metricStart = g.input("metric_start", "int64", [1]);
  const positionIds = g.node("Unsqueeze", [positions, g.int64s([0])]); // (1, T)
  let x = g.node("Gather", [s.emb, ids], { axis: 0 }); // (T, dim)
  let pending: string | undefined;
  const kvs: HostResult[] = [];
  const metrics: HostResult[] = [];
  for (let l = 0; l < c.nLayers; l++) {
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
    kvs.push({ value: k, shape: [nKvHeads, 1, "T", hd], name: `key_${l}` });
    kvs.push({ value: v, shape: [nKvHeads, 1, "T", hd], name: `value_${l}` });
    const probs = g.node("Softmax", [g.node("Add", [g.node("MatMul", [qg, kT]), bias])], { axis: -1 });
    const ctx = g.node("MatMul", [probs, v]); // (nKv, g, T, hd)
    const merged = g.node("Reshape", [
      g.node("Transpose", [ctx], { perm: [2, 0, 1, 3] }), // (T, nKv, g, hd)
      g.int64s([-1, nHeads * hd]),
    ]);
    ({ x, pending } = b.finish(merged));
    const last = g.node("Slice", [probs, metricStart, g.int64s([Number.MAX_SAFE_INTEGER]), g.int64s([2])]);
    const metric = g.node("ReduceSum", [g.node("Mul", [last, last]), g.int64s([1, 2])], { keepdims: 0 });
    metrics.push({ value: metric, shape: [nKvHeads, "T"], name: `metric_${l}` });
  }
  const normed = addRmsNorm(g, x, pending!, { weight: s.finalNorm, eps: c.normEps }).normed;
  const lastX = g.node("Slice", [normed, g.int64s([-1]), g.int64s([Number.MAX_SAFE_INTEGER]), g.int64s([0])]);
  const logits = linear(g, lastX, s.cls);
  hostOutputs(g, [{ value: logits, shape: [1, c.vocabSize], name: "logits" }, ...metrics, ...kvs], opts);
  return g;
}

function buildDecodeFused(c: ModelConfig, w: LlamaWeights, opts: GraphOptions & { present?: boolean }) {
  const s = fusedShared("llama_decode", c, w);
  const { g } = s;
  const { nHeads, nKvHeads, headDim: hd } = c;
  const group = nHeads / nKvHeads;
  const ids = g.input("input_ids", "int64", ["B"]);
  const positions = g.input("positions", "int64", ["B"]);
  const positionIds = g.node("Unsqueeze", [positions, g.int64s([1])]); // (B, 1)
  let x = g.node("Gather", [s.emb, ids], { axis: 0 }); // (B, dim)
  let pending: string | undefined;
  const present: [string, string][] = [];
  const kvs: HostResult[] = [];
  for (let l = 0; l < c.nLayers; l++) {
    const pastK = g.input(`past_key_${l}`, "float32", ["B", nKvHeads, `P${l}`, hd]);
    const pastV = g.input(`past_value_${l}`, "float32", ["B", nKvHeads, `P${l}`, hd]);
    const bias = g.input(`attn_bias_${l}`, "float32", ["B", nKvHeads, 1, `P${l}+1`]);
    const p = fusedLayer(g, c, l, w.layers[l]);
    const b = fusedBlock(s, c, { x, pending, p, positionIds, shape3: [-1, 1, (nHeads + 2 * nKvHeads) * hd] });
    const kvShape = g.int64s([-1, nKvHeads, 1, hd]);
    const k = g.node("Reshape", [b.k, kvShape]); // (B, nKv, 1, hd)
    const v = g.node("Reshape", [b.v, kvShape]);
    kvs.push({ value: k, shape: ["B", nKvHeads, 1, hd], name: `new_key_${l}` });
    kvs.push({ value: v, shape: ["B", nKvHeads, 1, hd], name: `new_value_${l}` });
    const keys = g.node("Concat", [pastK, k], { axis: 2 }); // (B, nKv, P+1, hd)
    const values = g.node("Concat", [pastV, v], { axis: 2 });
    present.push([keys, values]);
    const qg = g.node("Reshape", [b.q, g.int64s([-1, nKvHeads, group, hd])]); // pre-scaled
    const kT = g.node("Transpose", [keys], { perm: [0, 1, 3, 2] });
    const scores = g.node("Add", [g.node("MatMul", [qg, kT]), bias]); // (B, nKv, g, P+1)
    const ctx = g.node("MatMul", [g.node("Softmax", [scores], { axis: -1 }), values]); // (B, nKv, g, hd)
    ({ x, pending } = b.finish(g.node("Reshape", [ctx, g.int64s([-1, nHeads * hd])])));
  }
  const normed = addRmsNorm(g, x, pending!, { weight: s.finalNorm, eps: c.normEps }).normed;
  const logits = linear(g, normed, s.cls);
  hostOutputs(g, [{ value: logits, shape: ["B", c.vocabSize], name: "logits" }, ...kvs], opts);
  if (opts.present) {
    present.forEach(([keys, values], l) => {
      g.output(keys, "float32", ["B", nKvHeads, `P${l}+1`, hd], `present_key_${l}`);
      g.output(values, "float32", ["B", nKvHeads, `P${l}+1`, hd], `present_value_${l}`);
    });
  }
  return g;
}
