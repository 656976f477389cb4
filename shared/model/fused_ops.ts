/**
 * Llama building blocks as onnxruntime contrib ops, for the fused graphs (`fused: true` in
 * `llama_graph.ts`): fewer, larger kernels where each kernel launch has a fixed cost (the
 * WebGPU provider, WEBGPU.md). Each op below is registered by both the CPU and the WebGPU
 * provider of onnxruntime 1.30 (upstream `contrib_ops/webgpu/webgpu_contrib_kernels.cc`;
 * checked here with `disable_cpu_ep_fallback` on lavapipe, `fused_graph_test.ts`):
 *
 *   SimplifiedLayerNormalization (ONNX domain, v1)        RMSNorm
 *   SkipSimplifiedLayerNormalization (com.microsoft)      residual add + RMSNorm, both out
 *   RotaryEmbedding (com.microsoft, interleaved 0)        rotate-half RoPE from a cos/sin cache
 *   QuickGelu (com.microsoft, alpha 1)                    x·sigmoid(x) = SiLU
 *
 * The math is the one of `graph_ops.ts`; results differ from it by fp32 rounding only.
 * @module
 */
import type { GraphBuilder } from "../onnx/mod.ts";

const MS = "com.microsoft";

function f32(value: number) {
  return { kind: "float" as const, value };
}

/** RMSNorm over the last axis: x / sqrt(mean(x²) + eps) * weight. x: (..., dim). */
export function rmsNormFused(g: GraphBuilder, x: string, weight: string, eps: number): string {
  return g.nodeIn("", "SimplifiedLayerNormalization", [x, weight], {
    attrs: { axis: -1, epsilon: f32(eps), stash_type: 1 },
  })[0];
}

/**
 * The residual add and the next RMSNorm in one kernel: `sum = x + y`,
 * `normed = rmsNorm(sum)`. x, y: (rows, dim) or (batch, seq, dim).
 */
export function addRmsNorm(
  g: GraphBuilder,
  x: string,
  y: string,
  norm: { weight: string; eps: number },
): { sum: string; normed: string } {
  const [normed, , , sum] = g.nodeIn(MS, "SkipSimplifiedLayerNormalization", [x, y, norm.weight], {
    attrs: { epsilon: f32(norm.eps) },
    used: [true, false, false, true],
  });
  return { sum, normed };
}

/**
 * Rotate-half RoPE of every head of x (batch, seq, nHeads*headDim): dimension i pairs with
 * i + headDim/2, the angle being cache row `positionIds[b, s]`. positionIds: int64
 * (batch, seq); cos, sin: (rows, headDim/2).
 */
export function ropeFused(
  g: GraphBuilder,
  x: string,
  positionIds: string,
  cache: { cos: string; sin: string; nHeads: number },
): string {
  return g.nodeIn(MS, "RotaryEmbedding", [x, positionIds, cache.cos, cache.sin], {
    attrs: { interleaved: 0, num_heads: cache.nHeads },
  })[0];
}

/** SwiGLU with SiLU as one kernel: W2 (silu(W1 x) * W3 x). x: (rows, dim). */
export function swigluFused(g: GraphBuilder, x: string, w1: string, w2: string, w3: string): string {
  const gemm = (a: string, w: string) => g.node("Gemm", [a, w], { transB: 1 });
  const silu = g.nodeIn(MS, "QuickGelu", [gemm(x, w1)], { attrs: { alpha: f32(1) } })[0];
  return gemm(g.node("Mul", [silu, gemm(x, w3)]), w2);
}

/**
 * RoPE cos/sin cache for positions 0..maxPos-1: (maxPos, headDim/2), the angle of row p,
 * column j being fp32(p · invFreq[j]), as `ropeTables` computes it in the graph.
 */
export function ropeCache(invFreq: Float32Array, maxPos: number): { cos: Float32Array; sin: Float32Array } {
  const half = invFreq.length;
  const cos = new Float32Array(maxPos * half), sin = new Float32Array(maxPos * half);
  for (let p = 0; p < maxPos; p++) {
    for (let j = 0; j < half; j++) {
      const a = Math.fround(p * invFreq[j]);
      cos[p * half + j] = Math.cos(a);
      sin[p * half + j] = Math.sin(a);
    }
  }
  return { cos, sin };
}
