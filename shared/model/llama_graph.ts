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
 *   with `attention`, after those: per layer l: attn_l (B, nKv, P_l + 1) = Σ over the g query
 *            heads of each KV head of the new query's softmax-probability² (column P_l is the
 *            new token), the metric decode-time eviction accumulates
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
 * Gemm for Q|K|V; attention stays the subgraph above (`fused_graph.ts`). The parts both
 * share are in `graph_parts.ts`.
 * @module
 */
import type { GraphBuilder } from "../onnx/mod.ts";
import type { ModelConfig } from "./config.ts";
import { buildDecodeFused, buildPrefillFused } from "./fused_graph.ts";
import { applyRope, layerInitializers, linear, rmsNorm, ropeTables, swiglu } from "./graph_ops.ts";
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
  type LayerGroup,
  layerGroup,
  prefillInputs,
  prefillOutputs,
} from "./graph_parts.ts";
import { ropeInvFreq } from "./rope.ts";
import type { LlamaWeights } from "./weights.ts";

/** Additive bias for masked positions; exp() of it is exactly 0 in fp32. */
export const MASKED = -1e9;

export { type GraphOptions, HIDDEN_OUT, type LayerGroup, PACKED } from "./graph_parts.ts";

/** Results of the prefill graph for a prompt of T tokens, as views of `packed`. */
export interface PrefillResults {
  logits: Float32Array; // (vocab)
  metric: Float32Array; // (nLayers, nKv, T)
  keys: Float32Array[]; // per layer (nKv, T, hd)
  values: Float32Array[]; // per layer (nKv, T, hd)
}

/** Results of a layer group's prefill graph in `packed`: `logits` from the last group only. */
export interface PrefillGroupResults {
  logits?: Float32Array; // (vocab)
  metric: Float32Array; // (to - from, nKv, T)
  keys: Float32Array[]; // per layer of the group (nKv, T, hd)
  values: Float32Array[];
}

/** Results of the decode graph for B sequences, as views of `packed`. */
export interface DecodeResults {
  logits: Float32Array; // (B, vocab)
  keys: Float32Array[]; // per layer (B, nKv, hd)
  values: Float32Array[]; // per layer (B, nKv, hd)
  attention?: Float32Array[]; // per layer (B, nKv, P_l + 1), with `attention`
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
  const r = unpackPrefillGroup(packed, c, T, { from: 0, to: c.nLayers });
  return { logits: r.logits!, metric: r.metric, keys: r.keys, values: r.values };
}

/** Views of a layer group's prefill output for T tokens (no copies). */
export function unpackPrefillGroup(
  packed: Float32Array,
  c: ModelConfig,
  T: number,
  group: LayerGroup,
): PrefillGroupResults {
  const n = group.to - group.from;
  const last = group.to === c.nLayers;
  const kv = c.nKvHeads * T * c.headDim;
  const parts = cut(
    packed,
    [...(last ? [c.vocabSize] : []), n * c.nKvHeads * T, ...Array(2 * n).fill(kv)],
    "prefill",
  );
  const logits = last ? parts.shift() : undefined;
  const [metric, ...rest] = parts;
  return {
    ...(logits ? { logits } : {}),
    metric,
    keys: rest.filter((_, i) => i % 2 === 0),
    values: rest.filter((_, i) => i % 2 === 1),
  };
}

/**
 * Views of the decode graph's `packed` output for B sequences (no copies). `pastLengths`
 * (P_l per layer) when the graph was built with `attention`.
 */
export function unpackDecode(
  packed: Float32Array,
  c: ModelConfig,
  B: number,
  pastLengths?: number[],
): DecodeResults {
  const kv = B * c.nKvHeads * c.headDim;
  const attn = (pastLengths ?? []).map((P) => B * c.nKvHeads * (P + 1));
  const [logits, ...rest] = cut(
    packed,
    [B * c.vocabSize, ...Array(2 * c.nLayers).fill(kv), ...attn],
    "decode",
  );
  const kvs = rest.slice(0, 2 * c.nLayers);
  return {
    logits,
    keys: kvs.filter((_, i) => i % 2 === 0),
    values: kvs.filter((_, i) => i % 2 === 1),
    attention: pastLengths ? rest.slice(2 * c.nLayers) : undefined,
  };
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
  // onto `b` itself: spreading it would make every weight an initializer (see `base`)
  return Object.assign(b, { invFreq, scale: b.g.scalar(1 / Math.sqrt(c.headDim), "attn_scale") });
}

/** The prefill graph (see module doc). */
export function buildPrefillGraph(c: ModelConfig, w: LlamaWeights, opts: GraphOptions = {}): GraphBuilder {
  if (opts.fused) return buildPrefillFused(c, w, opts);
  const layers = layerGroup(c, opts);
  const s = shared("llama_prefill", c, w);
  const { g } = s;
  const { nHeads, nKvHeads, headDim: hd } = c;
  const group = nHeads / nKvHeads;
  const { ids, hidden, positions, bias, metricStart } = prefillInputs(g, layers, c.dim);
  const rope = ropeTables(g, positions, s.invFreq); // (T, hd)
  let x = hidden ?? g.node("Gather", [s.emb, ids!], { axis: 0 }); // (T, dim)
  const kvs: HostResult[] = [];
  const metrics: HostResult[] = [];
  for (let l = layers.from; l < layers.to; l++) {
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
  const head = layers.last
    ? { logits: linear(g, rmsNorm(g, lastRow(g, x), s.finalNorm, c.normEps), s.cls) }
    : { x };
  prefillOutputs(g, c, layers, head, [...metrics, ...kvs], opts);
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
  const probs: string[] = [];
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
    const attn = decodeAttention(g, c, { q, keys, values, bias, scale: s.scale });
    probs.push(attn.probs);
    x = g.node("Add", [x, linear(g, attn.context, p.wo!)]);
    x = g.node("Add", [x, swiglu(g, rmsNorm(g, x, p.ffnNorm!, c.normEps), p.w1!, p.w2!, p.w3!)]);
  }
  const logits = linear(g, rmsNorm(g, x, s.finalNorm, c.normEps), s.cls);
  decodeOutputs(g, c, { logits, kvs, present, probs }, opts);
  return g;
}
