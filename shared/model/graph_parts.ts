/**
 * The parts both Llama graph families share (`llama_graph.ts` builds the standard-op one,
 * `fused_graph.ts` the fused one): the model-wide initializers, the inputs, attention
 * probabilities, the KV-Compress metric and the outputs. Each adds its nodes where it is
 * called, so a builder's node order (and so its ONNX bytes) is its own.
 * @module
 */
import { GraphBuilder } from "../onnx/mod.ts";
import type { ModelConfig } from "./config.ts";
import type { LlamaWeights } from "./weights.ts";

/** Name of the one output that carries every host-bound result (see `llama_graph.ts`). */
export const PACKED = "packed";

/** Options of the graph builders. */
export interface GraphOptions {
  /** Each result as its own output instead of `packed` (benchmarks compare both). */
  perOutput?: boolean;
  /**
   * Decode only: also return each layer's attention metric of the new query (`attn_l`,
   * after the new K/V), what decode-time eviction ranks by.
   */
  attention?: boolean;
  /**
   * The same inputs, outputs and math with fewer, larger kernels: onnxruntime contrib ops
   * (`fused_ops.ts`), one Gemm for Q, K and V, the attention scale folded into Wq. For the
   * WebGPU provider, where each kernel launch has a fixed cost; results differ from the
   * standard-op graph by fp32 rounding (the CPU keeps the standard one, bit for bit).
   */
  fused?: boolean;
  /**
   * Prefill only: just layers [from, to), so prefill can run as consecutive graphs and hand each
   * group's KV on while the next group computes. A group after the first takes the residual
   * stream `hidden` (T, dim) instead of `input_ids`; one before the last returns it as the output
   * `hidden_out`, outside `packed` (so the group's KV views do not keep it alive), where the last
   * returns `logits`. Default: every layer, one graph.
   */
  layers?: LayerGroup;
}

/** Layers [from, to) of a prefill run in groups. */
export interface LayerGroup {
  from: number;
  to: number;
}

/** The layer group `opts` names, checked against the model's layer count (default: all). */
export function layerGroup(
  c: ModelConfig,
  opts: GraphOptions,
): LayerGroup & { first: boolean; last: boolean } {
  const { from, to } = opts.layers ?? { from: 0, to: c.nLayers };
  if (!(Number.isInteger(from) && Number.isInteger(to) && from >= 0 && from < to && to <= c.nLayers)) {
    throw new RangeError(`layer group [${from}, ${to}) is not within the model's ${c.nLayers} layers`);
  }
  return { from, to, first: from === 0, last: to === c.nLayers };
}

/** One host-bound result of a graph: its value, shape and per-output name. */
export interface HostResult {
  value: string;
  shape: (number | string)[];
  name: string;
}

/**
 * Declares the host-bound results of a graph: each as its own output (`perOutput`), or all
 * flattened and concatenated, in the given order, into the one output `packed`.
 */
export function hostOutputs(
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

/** The output a layer group before the last hands the next its residual stream in. */
export const HIDDEN_OUT = "hidden_out";

/**
 * A prefill graph's outputs: the last layer group's logits first in `packed`; an earlier group's
 * residual stream `x` (T, dim) as its own output `hidden_out` instead.
 */
export function prefillOutputs(
  g: GraphBuilder,
  c: ModelConfig,
  group: { last: boolean },
  head: { logits?: string; x?: string },
  results: HostResult[],
  opts: GraphOptions,
): void {
  if (group.last) {
    hostOutputs(g, [{ value: head.logits!, shape: [1, c.vocabSize], name: "logits" }, ...results], opts);
  } else {
    g.output(head.x!, "float32", ["T", c.dim], HIDDEN_OUT);
    hostOutputs(g, results, opts);
  }
}

/**
 * What both graph families start with: the builder and the model-wide weights. Each weight
 * becomes an initializer when a graph first uses it, so a layer group's graph holds only what it
 * needs (onnxruntime warns about, and drops, initializers no node uses).
 */
export interface Base {
  g: GraphBuilder;
  readonly emb: string; // (vocab, dim)
  readonly cls: string; // (vocab, dim), `emb` when the classifier is tied
  readonly finalNorm: string; // (dim)
}

export function base(name: string, c: ModelConfig, w: LlamaWeights): Base {
  const g = new GraphBuilder(name);
  let emb: string | undefined, cls: string | undefined, finalNorm: string | undefined;
  return {
    g,
    get emb() {
      return emb ??= g.initializer("tok_embeddings", "float32", [c.vocabSize, c.dim], w.tokEmb);
    },
    get cls() {
      return cls ??= w.classifier
        ? g.initializer("output", "float32", [c.vocabSize, c.dim], w.classifier)
        : this.emb;
    },
    get finalNorm() {
      return finalNorm ??= g.initializer("norm", "float32", [c.dim], w.finalNorm);
    },
  };
}

/** The matrix sizes of a layer. */
export function dimsOf(c: ModelConfig) {
  return { dim: c.dim, hiddenDim: c.hiddenDim, qDim: c.nHeads * c.headDim, kvDim: c.nKvHeads * c.headDim };
}

/**
 * The prefill inputs (see `llama_graph.ts`): token ids for the first layer group, the residual
 * stream (T, dim) for a later one.
 */
export function prefillInputs(g: GraphBuilder, group: { first: boolean }, dim: number) {
  return {
    ids: group.first ? g.input("input_ids", "int64", ["T"]) : undefined,
    hidden: group.first ? undefined : g.input("hidden", "float32", ["T", dim]),
    positions: g.input("positions", "int64", ["T"]),
    bias: g.input("attn_bias", "float32", ["T", "T"]), // (T, T), 0 or MASKED
    metricStart: g.input("metric_start", "int64", [1]),
  };
}

/** The decode inputs, those of each layer in layer order (past_key_l, past_value_l, attn_bias_l). */
export function decodeInputs(g: GraphBuilder, c: ModelConfig) {
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
export function attentionProbs(
  g: GraphBuilder,
  qg: string,
  kT: string,
  bias: string,
  scale?: string,
): string {
  let scores = g.node("MatMul", [qg, kT]);
  if (scale) scores = g.node("Mul", [scores, scale]);
  return g.node("Softmax", [g.node("Add", [scores, bias])], { axis: -1 });
}

/**
 * Decode attention of q (B, ...; nHeads·hd values a row) against keys, values
 * (B, nKv, P+1, hd): the context (B, nHeads·hd) and the probabilities (B, nKv, g, P+1).
 */
export function decodeAttention(
  g: GraphBuilder,
  c: ModelConfig,
  a: { q: string; keys: string; values: string; bias: string; scale?: string },
): { context: string; probs: string } {
  const { nHeads, nKvHeads, headDim: hd } = c;
  const qg = g.node("Reshape", [a.q, g.int64s([-1, nKvHeads, nHeads / nKvHeads, hd])]);
  const kT = g.node("Transpose", [a.keys], { perm: [0, 1, 3, 2] });
  const probs = attentionProbs(g, qg, kT, a.bias, a.scale); // (B, nKv, g, P+1)
  const ctx = g.node("MatMul", [probs, a.values]); // (B, nKv, g, hd)
  return { context: g.node("Reshape", [ctx, g.int64s([-1, nHeads * hd])]), probs };
}

/**
 * Layer l's decode attention metric from its probs (B, nKv, g, P_l+1) as the host result
 * `attn_l` (B, nKv, P_l+1): probability², summed over the g query heads of each KV head.
 */
function attentionResult(g: GraphBuilder, l: number, probs: string, nKvHeads: number): HostResult {
  const metric = g.node("ReduceSum", [g.node("Mul", [probs, probs]), g.int64s([2])], { keepdims: 0 });
  return { value: metric, shape: ["B", nKvHeads, `P${l}+1`], name: `attn_${l}` };
}

/** KV-Compress metric (nKv, T) from probs (nKv, g, T, T): Σ over queries ≥ metricStart and g of p². */
export function kvMetric(g: GraphBuilder, probs: string, metricStart: string): string {
  const last = g.node("Slice", [probs, metricStart, g.int64s([Number.MAX_SAFE_INTEGER]), g.int64s([2])]);
  return g.node("ReduceSum", [g.node("Mul", [last, last]), g.int64s([1, 2])], { keepdims: 0 });
}

/** The last row of x (T, dim) as (1, dim). */
export function lastRow(g: GraphBuilder, x: string): string {
  return g.node("Slice", [x, g.int64s([-1]), g.int64s([Number.MAX_SAFE_INTEGER]), g.int64s([0])]);
}

/** Layer l's key and value as host results named `${prefix}key_l`, `${prefix}value_l`. */
export function kvResults(
  l: number,
  kv: [string, string],
  shape: (number | string)[],
  prefix = "",
): HostResult[] {
  return [
    { value: kv[0], shape, name: `${prefix}key_${l}` },
    { value: kv[1], shape, name: `${prefix}value_${l}` },
  ];
}

/**
 * The decode outputs: logits and new K/V for the host (then, with `attention`, each layer's
 * attention metric), then with `present` the K/V kept.
 */
export function decodeOutputs(
  g: GraphBuilder,
  c: ModelConfig,
  r: { logits: string; kvs: HostResult[]; present: [string, string][]; probs: string[] },
  opts: GraphOptions & { present?: boolean },
): void {
  const attn = opts.attention ? r.probs.map((p, l) => attentionResult(g, l, p, c.nKvHeads)) : [];
  hostOutputs(g, [{ value: r.logits, shape: ["B", c.vocabSize], name: "logits" }, ...r.kvs, ...attn], opts);
  if (!opts.present) return;
  r.present.forEach(([keys, values], l) => {
    const shape = ["B", c.nKvHeads, `P${l}+1`, c.headDim];
    g.output(keys, "float32", shape, `present_key_${l}`);
    g.output(values, "float32", shape, `present_value_${l}`);
  });
}
