/**
 * The packed host output of the graphs: one output, cut by `unpackPrefill` / `unpackDecode`
 * into exactly the values the per-output graphs return (Reshape and Concat move bytes only).
 */
import { assertEquals, assertThrows } from "@std/assert";
import * as ort from "onnxruntime-node";
import { STORIES260K } from "../../tests/_harness/paths.ts";
import { encodeModel } from "../onnx/mod.ts";
import {
  buildDecodeGraph,
  buildPrefillGraph,
  MASKED,
  PACKED,
  unpackDecode,
  unpackPrefill,
} from "./llama_graph.ts";
import { parseLlama2cCheckpoint } from "./mod.ts";
import { createSession } from "./session.ts";

const { config: C, weights: W } = parseLlama2cCheckpoint(await Deno.readFile(STORIES260K.model));
const { nLayers, nKvHeads: H, headDim: HD } = C;

const i64 = (v: number[]) => new ort.Tensor("int64", BigInt64Array.from(v.map(BigInt)), [v.length]);
const bytes = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const data = (t: ort.Tensor) => t.data as Float32Array;

async function runBoth(
  build: (opts: { perOutput?: boolean }) => Uint8Array,
  feeds: Record<string, ort.Tensor>,
) {
  const packed = await createSession(build({}));
  const split = await createSession(build({ perOutput: true }));
  try {
    assertEquals(packed.outputNames, [PACKED]);
    return { packed: data((await packed.run(feeds))[PACKED]), split: await split.run(feeds) };
  } finally {
    await packed.release();
    await split.release();
  }
}

Deno.test("buildPrefillGraph() packs logits, metric and KV into one output, bit for bit", async () => {
  const T = 11;
  const bias = new Float32Array(T * T);
  for (let i = 0; i < T; i++) bias.fill(MASKED, i * T + i + 1, (i + 1) * T);
  const ids = Array.from({ length: T }, (_, i) => (5 * i + 1) % C.vocabSize);
  const { packed, split } = await runBoth(
    (o) => encodeModel(buildPrefillGraph(C, W, o).toModel()),
    {
      input_ids: i64(ids),
      positions: i64(ids.map((_, i) => i)),
      attn_bias: new ort.Tensor("float32", bias, [T, T]),
      metric_start: i64([T - 4]),
    },
  );
  const r = unpackPrefill(packed, C, T);
  assertEquals(bytes(r.logits), bytes(data(split.logits)));
  for (let l = 0; l < nLayers; l++) {
    assertEquals(bytes(r.keys[l]), bytes(data(split[`key_${l}`])));
    assertEquals(bytes(r.values[l]), bytes(data(split[`value_${l}`])));
    assertEquals(bytes(r.metric.subarray(l * H * T, (l + 1) * H * T)), bytes(data(split[`metric_${l}`])));
  }
  assertEquals(r.keys[0].buffer, packed.buffer); // views, not copies
  assertThrows(() => unpackPrefill(packed, C, T + 1), RangeError);
});

Deno.test("buildDecodeGraph() packs logits and new KV into one output, bit for bit", async () => {
  const B = 3, P = 4;
  const feeds: Record<string, ort.Tensor> = { input_ids: i64([1, 7, 9]), positions: i64([4, 2, 3]) };
  for (let l = 0; l < nLayers; l++) {
    const past = Float32Array.from({ length: B * H * P * HD }, (_, i) => Math.sin(i + l));
    feeds[`past_key_${l}`] = new ort.Tensor("float32", past, [B, H, P, HD]);
    feeds[`past_value_${l}`] = new ort.Tensor("float32", past.map((x) => -x), [B, H, P, HD]);
    feeds[`attn_bias_${l}`] = new ort.Tensor("float32", new Float32Array(B * H * (P + 1)), [B, H, 1, P + 1]);
  }
  const { packed, split } = await runBoth(
    (o) => encodeModel(buildDecodeGraph(C, W, o).toModel()),
    feeds,
  );
  const r = unpackDecode(packed, C, B);
  assertEquals(bytes(r.logits), bytes(data(split.logits)));
  for (let l = 0; l < nLayers; l++) {
    assertEquals(bytes(r.keys[l]), bytes(data(split[`new_key_${l}`])));
    assertEquals(bytes(r.values[l]), bytes(data(split[`new_value_${l}`])));
  }
  assertThrows(() => unpackDecode(packed, C, B - 1), RangeError);
});
