/**
 * Llama building blocks written as standard ONNX ops on a `GraphBuilder`: RMSNorm, a
 * linear layer, rotate-half RoPE and the SwiGLU feed-forward. Shapes are in each comment;
 * `...` is any leading shape.
 * @module
 */
import type { GraphBuilder } from "../onnx/mod.ts";
import type { LayerWeights } from "./weights.ts";

/** y = x / sqrt(mean(x²) + eps) * weight, over the last axis. x: (..., dim). */
export function rmsNorm(g: GraphBuilder, x: string, weight: string, eps: number): string {
  const ms = g.node("ReduceMean", [g.node("Mul", [x, x])], { axes: [-1], keepdims: 1 });
  const inv = g.node("Reciprocal", [g.node("Sqrt", [g.node("Add", [ms, g.scalar(eps)])])]);
  return g.node("Mul", [g.node("Mul", [x, inv]), weight]);
}

/** x (rows, in) @ Wᵀ (+ b), W stored `[out, in]` as in the checkpoint (Gemm transB). */
export function linear(g: GraphBuilder, x: string, w: string, b?: string): string {
  return g.node("Gemm", b ? [x, w, b] : [x, w], { transB: 1 });
}

/**
 * cos and sin tables for positions: (..., headDim), the angle of dimension i being
 * pos * invFreq[i mod headDim/2]. `positions` is int64 (...).
 */
export function ropeTables(
  g: GraphBuilder,
  positions: string,
  invFreq: string,
): { cos: string; sin: string } {
  const pos = g.node("Unsqueeze", [g.node("Cast", [positions], { to: 1 }), g.int64s([-1])]);
  const half = g.node("Mul", [pos, invFreq]); // (..., headDim/2)
  const ang = g.node("Concat", [half, half], { axis: -1 });
  return { cos: g.node("Cos", [ang]), sin: g.node("Sin", [ang]) };
}

/** x*cos + rotate_half(x)*sin, rotate_half(x) = [-x2, x1]. x: (..., headDim); tables broadcast. */
export function applyRope(
  g: GraphBuilder,
  x: string,
  t: { cos: string; sin: string },
  headDim: number,
): string {
  const half = headDim / 2;
  const axes = g.int64s([-1]);
  const x1 = g.node("Slice", [x, g.int64s([0]), g.int64s([half]), axes]);
  const x2 = g.node("Slice", [x, g.int64s([half]), g.int64s([headDim]), axes]);
  const rot = g.node("Concat", [g.node("Neg", [x2]), x1], { axis: -1 });
  return g.node("Add", [g.node("Mul", [x, t.cos]), g.node("Mul", [rot, t.sin])]);
}

/** Registers the weights of layer `l` as initializers; returns their names. */
export function layerInitializers(g: GraphBuilder, l: number, w: LayerWeights, dims: {
  dim: number;
  hiddenDim: number;
  qDim: number;
  kvDim: number;
}): Record<keyof LayerWeights, string | undefined> {
  const { dim, hiddenDim, qDim, kvDim } = dims;
  const p = `layers.${l}.`;
  const init = (n: string, shape: number[], a?: Float32Array) =>
    a === undefined ? undefined : g.initializer(p + n, "float32", shape, a);
  return {
    attnNorm: init("attn_norm", [dim], w.attnNorm),
    wq: init("wq", [qDim, dim], w.wq),
    wk: init("wk", [kvDim, dim], w.wk),
    wv: init("wv", [kvDim, dim], w.wv),
    wo: init("wo", [dim, qDim], w.wo),
    bq: init("bq", [qDim], w.bq),
    bk: init("bk", [kvDim], w.bk),
    bv: init("bv", [kvDim], w.bv),
    ffnNorm: init("ffn_norm", [dim], w.ffnNorm),
    w1: init("w1", [hiddenDim, dim], w.w1),
    w2: init("w2", [dim, hiddenDim], w.w2),
    w3: init("w3", [hiddenDim, dim], w.w3),
  };
}

/** SwiGLU: W2 (silu(W1 x) * W3 x). x: (rows, dim). */
export function swiglu(g: GraphBuilder, x: string, w1: string, w2: string, w3: string): string {
  const gate = linear(g, x, w1);
  const silu = g.node("Mul", [gate, g.node("Sigmoid", [gate])]);
  return linear(g, g.node("Mul", [silu, linear(g, x, w3)]), w2);
}
