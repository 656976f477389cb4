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

/** What both graph families start with: the builder and the model-wide weights. */
interface Base {
  g: GraphBuilder;
  emb: string; // (vocab, dim)
  cls: string; // (vocab, dim), `emb` when the classifier is tied
  finalNorm: string; // (dim)
}

function base(name: string, c: ModelConfig, w: LlamaWeights): Base {
  const g = new GraphBuilder(name);
  const emb = g.initializer("tok_embeddings", "float32", [c.vocabSize, c.dim], w.tokEmb);
  const cls = w.classifier ? g.initializer("output", "float32", [c.vocabSize, c.dim], w.classifier) : emb;
  const finalNorm = g.initializer("norm", "float32", [c.dim], w.finalNorm);
  return { g, emb, cls, finalNorm };
}

interface Shared extends Base {
  invFreq: string;
  scale: string;
}

function shared(name: string, c: ModelConfig, w: LlamaWeights): Shared {
  const b = base(name, c, w);
  const invFreq = b.g.initializer(
    "rope_inv_freq",
    "float32",
    [c.headDim / 2],
    ropeInvFreq(c.headDim, c.ropeTheta),
  );
  return { ...b, invFreq, scale: b.g.scalar(1 / Math.sqrt(c.headDim), "attn_scale") };
}

function dimsOf(c: ModelConfig) {
  return { dim: c.dim, hiddenDim: c.hiddenDim, qDim: c.nHeads * c.headDim, kvDim: c.nKvHeads * c.headDim };
}

// ---------------------------------------------------------------------------------------
// Parts both families share: the inputs, the attention probabilities, the metric, the
// outputs. Each adds its nodes where it is called, so a builder's node order is its own.

function prefillInputs(g: GraphBuilder) {
  return {
    ids: g.input("input_ids", "int64", ["T"]),
    positions: g.input("positions", "int64", ["T"]),
    bias: g.input("attn_bias", "float32", ["T", "T"]), // (T, T), 0 or MASKED
    metricStart: g.input("metric_start", "int64", [1]),
  };
}

/** The decode inputs, those of each layer in layer order (past_key_l, past_value_l, attn_bias_l). */
function decodeInputs(g: GraphBuilder, c: ModelConfig) {
  const { nKvHeads, headDim: hd } = c;
  const ids = g.input("input_ids", "int64", ["B"]);
  const positions = g.input("positions", "int64", ["B"]);
  const layers = Array.from({ length: c.nLayers }, (_, l) => ({
    pastK: g.input(`past_key_${l}`, "float32", ["B", nKvHeads, `P${l}`, hd]),
    pastV: g.input(`past_value_${l}`, "float32", ["B", nKvHeads, `P${l}`, hd]),
    bias: g.input(`attn_bias_${l}`, "float32", ["B", nKvHeads, 1, `P${l}+1`]),
  }));
  return { ids, positions, layers };
}

/** softmax(qg · kT (· scale) + bias) over the last axis; no `scale` where Q is pre-scaled. */
function attentionProbs(g: GraphBuilder, qg: string, kT: string, bias: string, scale?: string): string {
  let scores = g.node("MatMul", [qg, kT]);
  if (scale) scores = g.node("Mul", [scores, scale]);
  return g.node("Softmax", [g.node("Add", [scores, bias])], { axis: -1 });
}

/**
 * Decode attention of q (B, ...; nHeads·hd values a row) against keys, values
 * (B, nKv, P+1, hd): the context (B, nHeads·hd).
 */
function decodeAttention(
  g: GraphBuilder,
  c: ModelConfig,
  a: { q: string; keys: string; values: string; bias: string; scale?: string },
): string {
  const { nHeads, nKvHeads, headDim: hd } = c;
  const qg = g.node("Reshape", [a.q, g.int64s([-1, nKvHeads, nHeads / nKvHeads, hd])]);
  const kT = g.node("Transpose", [a.keys], { perm: [0, 1, 3, 2] });
  const probs = attentionProbs(g, qg, kT, a.bias, a.scale); // (B, nKv, g, P+1)
  const ctx = g.node("MatMul", [probs, a.values]); // (B, nKv, g, hd)
  return g.node("Reshape", [ctx, g.int64s([-1, nHeads * hd])]);
}

/** KV-Compress metric (nKv, T) from probs (nKv, g, T, T): Σ over queries ≥ metricStart and g of p². */
function kvMetric(g: GraphBuilder, probs: string, metricStart: string): string {
  const last = g.node("Slice", [probs, metricStart, g.int64s([Number.MAX_SAFE_INTEGER]), g.int64s([2])]);
  return g.node("ReduceSum", [g.node("Mul", [last, last]), g.int64s([1, 2])], { keepdims: 0 });
}

/** The last row of x (T, dim) as (1, dim). */
function lastRow(g: GraphBuilder, x: string): string {
  return g.node("Slice", [x, g.int64s([-1]), g.int64s([Number.MAX_SAFE_INTEGER]), g.int64s([0])]);
}

/** Layer l's key and value as host results named `${prefix}key_l`, `${prefix}value_l`. */
function kvResults(l: number, kv: [string, string], shape: (number | string)[], prefix = ""): HostResult[] {
  return [
    { value: kv[0], shape, name: `${prefix}key_${l}` },
    { value: kv[1], shape, name: `${prefix}value_${l}` },
  ];
}

/** The decode outputs: logits and new K/V for the host, then with `present` the K/V kept. */
function decodeOutputs(
  g: GraphBuilder,
  c: ModelConfig,
  r: { logits: string; kvs: HostResult[]; present: [string, string][] },
  opts: GraphOptions & { present?: boolean },
): void {
  hostOutputs(g, [{ value: r.logits, shape: ["B", c.vocabSize], name: "logits" }, ...r.kvs], opts);
  if (!opts.present) return;
  r.present.forEach(([keys, values], l) => {
    const shape = ["B", c.nKvHeads, `P${l}+1`, c.headDim];
    g.output(keys, "float32", shape, `present_key_${l}`);
    g.output(values, "float32", shape, `present_value_${l}`);
  });
}

// ---------------------------------------------------------------------------------------
// Standard-op graphs.

/** The prefill graph (see module doc). */
export function buildPrefillGraph(c: ModelConfig, w: LlamaWeights, opts: GraphOptions = {}): GraphBuilder {
  if (opts.fused) return buildPrefillFused(c, w, opts);
  const s = shared("llama_prefill", c, w);
  const { g } = s;
  const { nHeads, nKvHeads, headDim: hd } = c;
  const group = nHeads / nKvHeads;
  const { ids, positions, bias, metricStart } = prefillInputs(g);
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
    kvs.push(...kvResults(l, [k, v], [nKvHeads, "T", hd]));
    // Attention per KV group: q (nKv, g, T, hd) against k, v (nKv, 1, T, hd).
    const qg = g.node("Reshape", [q, g.int64s([nKvHeads, group, -1, hd])]);
    const kT = g.node("Unsqueeze", [g.node("Transpose", [k], { perm: [0, 2, 1] }), g.int64s([1])]);
    const probs = attentionProbs(g, qg, kT, bias, s.scale); // (nKv, g, T, T)
    const ctx = g.node("MatMul", [probs, g.node("Unsqueeze", [v, g.int64s([1])])]); // (nKv, g, T, hd)
    const merged = g.node("Reshape", [
      g.node("Transpose", [g.node("Reshape", [ctx, g.int64s([nHeads, -1, hd])])], { perm: [1, 0, 2] }),
      g.int64s([-1, nHeads * hd]),
    ]);
    x = g.node("Add", [x, linear(g, merged, p.wo!)]);
    metrics.push({ value: kvMetric(g, probs, metricStart), shape: [nKvHeads, "T"], name: `metric_${l}` });
    x = g.node("Add", [x, swiglu(g, rmsNorm(g, x, p.ffnNorm!, c.normEps), p.w1!, p.w2!, p.w3!)]);
  }
  const logits = linear(g, rmsNorm(g, lastRow(g, x), s.finalNorm, c.normEps), s.cls);
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
  const inputs = decodeInputs(g, c);
  const t = ropeTables(g, inputs.positions, s.invFreq); // (B, hd)
  const rope = {
    cos: g.node("Unsqueeze", [t.cos, g.int64s([1])]),
    sin: g.node("Unsqueeze", [t.sin, g.int64s([1])]),
  };
  let x = g.node("Gather", [s.emb, inputs.ids], { axis: 0 }); // (B, dim)
  const present: [string, string][] = [];
  const kvs: HostResult[] = [];
  for (let l = 0; l < c.nLayers; l++) {
    const { pastK, pastV, bias } = inputs.layers[l];
    const p = layerInitializers(g, l, w.layers[l], dimsOf(c));
    const h = rmsNorm(g, x, p.attnNorm!, c.normEps);
    const heads = (y: string, n: number) => g.node("Reshape", [y, g.int64s([-1, n, hd])]); // (B, n, hd)
    const q = applyRope(g, heads(linear(g, h, p.wq!, p.bq), nHeads), rope, hd);
    const k = applyRope(g, heads(linear(g, h, p.wk!, p.bk), nKvHeads), rope, hd);
    const v = heads(linear(g, h, p.wv!, p.bv), nKvHeads);
    kvs.push(...kvResults(l, [k, v], ["B", nKvHeads, hd], "new_"));
    const axis2 = g.int64s([2]);
    const keys = g.node("Concat", [pastK, g.node("Unsqueeze", [k, axis2])], { axis: 2 }); // (B, nKv, P+1, hd)
    const values = g.node("Concat", [pastV, g.node("Unsqueeze", [v, axis2])], { axis: 2 });
    present.push([keys, values]);
    const merged = decodeAttention(g, c, { q, keys, values, bias, scale: s.scale });
    x = g.node("Add", [x, linear(g, merged, p.wo!)]);
    x = g.node("Add", [x, swiglu(g, rmsNorm(g, x, p.ffnNorm!, c.normEps), p.w1!, p.w2!, p.w3!)]);
  }
  const logits = linear(g, rmsNorm(g, x, s.finalNorm, c.normEps), s.cls);
  decodeOutputs(g, c, { logits, kvs, present }, opts);
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

interface FusedShared extends Base {
  cos: string; // (maxSeqLen, hd/2)
  sin: string;
}

function fusedShared(name: string, c: ModelConfig, w: LlamaWeights): FusedShared {
  const b = base(name, c, w);
  const cache = ropeCache(ropeInvFreq(c.headDim, c.ropeTheta), c.maxSeqLen);
  const half = c.headDim / 2;
  return {
    ...b,
    cos: b.g.initializer("rope_cos", "float32", [c.maxSeqLen, half], cache.cos),
    sin: b.g.initializer("rope_sin", "float32", [c.maxSeqLen, half], cache.sin),
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
  const { ids, positions, bias, metricStart } = prefillInputs(g);
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
  const normed = addRmsNorm(g, x, pending!, { weight: s.finalNorm, eps: c.normEps }).normed;
  const logits = linear(g, lastRow(g, normed), s.cls);
  hostOutputs(g, [{ value: logits, shape: [1, c.vocabSize], name: "logits" }, ...metrics, ...kvs], opts);
  return g;
}

function buildDecodeFused(c: ModelConfig, w: LlamaWeights, opts: GraphOptions & { present?: boolean }) {
  const s = fusedShared("llama_decode", c, w);
  const { g } = s;
  const { nHeads, nKvHeads, headDim: hd } = c;
  const inputs = decodeInputs(g, c);
  const positionIds = g.node("Unsqueeze", [inputs.positions, g.int64s([1])]); // (B, 1)
  let x = g.node("Gather", [s.emb, inputs.ids], { axis: 0 }); // (B, dim)
  let pending: string | undefined;
  const present: [string, string][] = [];
  const kvs: HostResult[] = [];
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
    ({ x, pending } = b.finish(decodeAttention(g, c, { q: b.q, keys, values, bias }))); // Q pre-scaled
  }
  const normed = addRmsNorm(g, x, pending!, { weight: s.finalNorm, eps: c.normEps }).normed;
  decodeOutputs(g, c, { logits: linear(g, normed, s.cls), kvs, present }, opts);
  return g;
}
