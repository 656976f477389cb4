/**
 * The fused graphs (`fused: true`, onnxruntime contrib ops) against the standard-op graphs
 * on stories260K, kvrelay-tiny and kvrelay-small's shape (random weights): the same packed
 * results (logits, metric, K/V) and present KV within 1e-4 · max(1, max |standard|) on the CPU
 * provider, and fewer than half the nodes. Where onnxruntime's WebGPU provider starts, each
 * contrib op loads with CPU fallback disabled (it runs on WebGPU) and matches the CPU. In the
 * whole fused graphs the one node onnxruntime places on the CPU is the Unsqueeze of the int64
 * `positions` input (its shape-op heuristic; it reads a host input, so no download), as the
 * Cast of the standard graphs.
 */
import { assert } from "@std/assert";
import * as ort from "onnxruntime-node";
import { encodeModel, GraphBuilder } from "../onnx/mod.ts";
import { addRmsNorm, rmsNormFused, ropeCache, ropeFused } from "./fused_ops.ts";
import { ropeInvFreq } from "./rope.ts";
import { webgpuStarts } from "./_webgpu_probe.ts";
import { buildDecodeGraph, buildPrefillGraph, MASKED, PACKED } from "./llama_graph.ts";
import { loadCheckpoint } from "./load.ts";
import { createSession } from "./session.ts";
import { assertClose, TEST_MODELS } from "./_testing.ts";
import { SMALL_MODEL_SHAPE, writeRandomCheckpoint } from "./_random_checkpoint.ts";

const WEBGPU = await webgpuStarts();

const i64 = (v: number[], shape = [v.length]) =>
  new ort.Tensor("int64", BigInt64Array.from(v.map(BigInt)), shape);

const assertNear = (actual: Float32Array, expected: Float32Array, what: string) =>
  assertClose(actual, expected, { tol: 1e-4, scaled: true, what });

async function runOnCpu(gb: GraphBuilder, feeds: Record<string, ort.Tensor>) {
  const s = await createSession(encodeModel(gb.toModel()));
  try {
    return await s.run(feeds);
  } finally {
    await s.release();
  }
}

function prefillFeeds(vocab: number, T: number, w: number): Record<string, ort.Tensor> {
  const bias = new Float32Array(T * T);
  for (let i = 0; i < T; i++) bias.fill(MASKED, i * T + i + 1, (i + 1) * T);
  const ids = Array.from({ length: T }, (_, i) => (37 * i + 11) % vocab);
  return {
    input_ids: i64(ids),
    positions: i64(ids.map((_, i) => i)),
    attn_bias: new ort.Tensor("float32", bias, [T, T]),
    metric_start: i64([T - w]),
  };
}

/** B = 3 sequences at different positions; each KV head attends to its own past prefix. */
function decodeFeeds(
  c: { nLayers: number; nKvHeads: number; headDim: number; vocabSize: number },
): Record<string, ort.Tensor> {
  const B = 3, P = 9, H = c.nKvHeads, HD = c.headDim;
  const feeds: Record<string, ort.Tensor> = {
    input_ids: i64([1, 7 % c.vocabSize, 300 % c.vocabSize]),
    positions: i64([9, 4, 7]),
  };
  for (let l = 0; l < c.nLayers; l++) {
    const past = Float32Array.from({ length: B * H * P * HD }, (_, i) => Math.sin(0.37 * i + l));
    feeds[`past_key_${l}`] = new ort.Tensor("float32", past, [B, H, P, HD]);
    feeds[`past_value_${l}`] = new ort.Tensor("float32", past.map((x) => -0.5 * x), [B, H, P, HD]);
    const bias = new Float32Array(B * H * (P + 1));
    for (let bh = 0; bh < B * H; bh++) {
      bias.fill(MASKED, bh * (P + 1) + ((3 * bh + l) % (P + 1)), bh * (P + 1) + P);
    }
    feeds[`attn_bias_${l}`] = new ort.Tensor("float32", bias, [B, H, 1, P + 1]);
  }
  return feeds;
}

/** kvrelay-small's shape before it is trained (random weights, 2 of its 6 layers). */
const SMALL_DIR = await Deno.makeTempDir({ prefix: "kvrelay-small-" });
await writeRandomCheckpoint(SMALL_DIR, { ...SMALL_MODEL_SHAPE, layers: 2 });
const MODELS = [...TEST_MODELS, { name: "kvrelay-small shape", load: { modelPath: SMALL_DIR } }];

for (const m of MODELS) {
  const { config: C, weights: W } = await loadCheckpoint(m.load.modelPath, m.load.tokenizerPath);

  Deno.test(`buildPrefillGraph({ fused }) matches the standard graph on the CPU (${m.name})`, async () => {
    const feeds = prefillFeeds(C.vocabSize, 23, 8);
    const want = await runOnCpu(buildPrefillGraph(C, W), feeds);
    const got = await runOnCpu(buildPrefillGraph(C, W, { fused: true }), feeds);
    assertNear(got[PACKED].data as Float32Array, want[PACKED].data as Float32Array, "prefill packed");
  });

  Deno.test(`buildDecodeGraph({ fused }) matches the standard graph on the CPU (${m.name})`, async () => {
    const feeds = decodeFeeds(C);
    // with the attention metric in the packed output, as `Model` builds them
    const want = await runOnCpu(buildDecodeGraph(C, W, { present: true, attention: true }), feeds);
    const got = await runOnCpu(
      buildDecodeGraph(C, W, { present: true, fused: true, attention: true }),
      feeds,
    );
    assertNear(got[PACKED].data as Float32Array, want[PACKED].data as Float32Array, "decode packed");
    for (let l = 0; l < C.nLayers; l++) {
      for (const n of [`present_key_${l}`, `present_value_${l}`]) {
        assertNear(got[n].data as Float32Array, want[n].data as Float32Array, n);
      }
    }
  });

  Deno.test(`fused graphs have fewer than half the nodes (${m.name})`, () => {
    const count = (gb: GraphBuilder) => gb.toGraph().nodes.length;
    for (
      const [what, plain, fused] of [
        ["prefill", buildPrefillGraph(C, W), buildPrefillGraph(C, W, { fused: true })],
        [
          "decode",
          buildDecodeGraph(C, W, { present: true }),
          buildDecodeGraph(C, W, { present: true, fused: true }),
        ],
      ] as const
    ) {
      const [a, b] = [count(plain), count(fused)];
      assert(2 * b < a, `${what}: ${b} fused nodes vs ${a}`);
    }
  });
}

await Deno.remove(SMALL_DIR, { recursive: true }); // its weights are in memory

/** Each contrib op of `fused_ops.ts` alone, fed from graph inputs (no shape op to leave on the CPU). */
function contribOps(): GraphBuilder {
  const g = new GraphBuilder("contrib_ops");
  const x = g.input("x", "float32", [2, 3, 32]);
  const y = g.input("y", "float32", [2, 3, 32]);
  const positionIds = g.input("position_ids", "int64", [2, 3]);
  const weight = g.initializer(
    "weight",
    "float32",
    [32],
    Float32Array.from({ length: 32 }, (_, i) => 1 + i / 8),
  );
  const cache = ropeCache(ropeInvFreq(8, 10000), 64);
  const cos = g.initializer("cos", "float32", [64, 4], cache.cos);
  const sin = g.initializer("sin", "float32", [64, 4], cache.sin);
  const { sum, normed } = addRmsNorm(g, x, y, { weight, eps: 1e-5 });
  g.output(sum, "float32", [2, 3, 32], "sum");
  g.output(normed, "float32", [2, 3, 32], "normed");
  g.output(rmsNormFused(g, x, weight, 1e-5), "float32", [2, 3, 32], "rms");
  g.output(ropeFused(g, x, positionIds, { cos, sin, nHeads: 4 }), "float32", [2, 3, 32], "rope");
  g.output(
    g.nodeIn("com.microsoft", "QuickGelu", [x], { attrs: { alpha: { kind: "float", value: 1 } } })[0],
    "float32",
    [
      2,
      3,
      32,
    ],
    "silu",
  );
  return g;
}

Deno.test({
  name: "the contrib ops of the fused graphs run on WebGPU with CPU fallback disabled, as on the CPU",
  ignore: !WEBGPU.ok,
  fn: async () => {
    const model = encodeModel(contribOps().toModel());
    const x = Float32Array.from({ length: 192 }, (_, i) => Math.sin(1.7 * i));
    const feeds = {
      x: new ort.Tensor("float32", x, [2, 3, 32]),
      y: new ort.Tensor("float32", x.map((v) => 0.5 * v * v), [2, 3, 32]),
      position_ids: i64([0, 1, 2, 40, 41, 63], [2, 3]),
    };
    const gpu = await ort.InferenceSession.create(model, {
      executionProviders: [{ name: "webgpu" }],
      extra: { session: { disable_cpu_ep_fallback: "1" } },
    });
    const cpu = await createSession(model);
    try {
      const [a, b] = [await cpu.run(feeds), await gpu.run(feeds)];
      for (const n of cpu.outputNames) assertNear(b[n].data as Float32Array, a[n].data as Float32Array, n);
    } finally {
      await gpu.release();
      await cpu.release();
    }
  },
});
