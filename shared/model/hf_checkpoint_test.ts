import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { STORIES260K } from "../../tests/_harness/paths.ts";
import { fromFloat32 } from "../dtype/mod.ts";
import type { Tensor } from "../dtype/mod.ts";
import { writeSafetensors } from "../safetensors/mod.ts";
import { CheckpointFormatError, hfConfigToModelConfig, Model, parseLlama2cCheckpoint } from "./mod.ts";
import type { LlamaWeights, ModelConfig } from "./mod.ts";
import { type HeadCache, referenceStep } from "./reference.ts";

const { config: C, weights: W } = parseLlama2cCheckpoint(await Deno.readFile(STORIES260K.model));
const reference = await Model.load({ modelPath: STORIES260K.model, tokenizerPath: STORIES260K.tokenizer });
const PROMPT = reference.tokenizer.encode("Once upon a time, Lily had a dog");
const refOut = await reference.prefill(PROMPT);
await reference.close();

/**
 * stories260K in Hugging Face layout: the loader already applied the row permutation that
 * transformers' convert_llama_weights_to_hf.py applies to wq/wk (pair (2j, 2j+1) → (j, j+hd/2)),
 * so the runtime weights go out under HF tensor names as they are.
 */
function hfTensors(w: LlamaWeights, c: ModelConfig, dtype: "f32" | "f16" | "bf16", untie: boolean) {
  const q = c.nHeads * c.headDim;
  const kv = c.nKvHeads * c.headDim;
  const out: Record<string, Tensor> = {};
  const put = (name: string, a: Float32Array, shape: number[]) => out[name] = fromFloat32(a, shape, dtype);
  put("model.embed_tokens.weight", w.tokEmb, [c.vocabSize, c.dim]);
  w.layers.forEach((l, i) => {
    const p = `model.layers.${i}.`;
    put(`${p}input_layernorm.weight`, l.attnNorm, [c.dim]);
    put(`${p}self_attn.q_proj.weight`, l.wq, [q, c.dim]);
    put(`${p}self_attn.k_proj.weight`, l.wk, [kv, c.dim]);
    put(`${p}self_attn.v_proj.weight`, l.wv, [kv, c.dim]);
    put(`${p}self_attn.o_proj.weight`, l.wo, [c.dim, q]);
    put(`${p}post_attention_layernorm.weight`, l.ffnNorm, [c.dim]);
    put(`${p}mlp.gate_proj.weight`, l.w1, [c.hiddenDim, c.dim]);
    put(`${p}mlp.down_proj.weight`, l.w2, [c.dim, c.hiddenDim]);
    put(`${p}mlp.up_proj.weight`, l.w3, [c.hiddenDim, c.dim]);
  });
  put("model.norm.weight", w.finalNorm, [c.dim]);
  if (untie) put("lm_head.weight", w.tokEmb, [c.vocabSize, c.dim]);
  return out;
}

function hfConfig(c: ModelConfig, extra: Record<string, unknown> = {}) {
  return {
    architectures: ["LlamaForCausalLM"],
    hidden_size: c.dim,
    intermediate_size: c.hiddenDim,
    num_hidden_layers: c.nLayers,
    num_attention_heads: c.nHeads,
    num_key_value_heads: c.nKvHeads,
    vocab_size: c.vocabSize,
    max_position_embeddings: c.maxSeqLen,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: true,
    hidden_act: "silu",
    ...extra,
  };
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
}

Deno.test("Model.load() on a Hugging Face folder gives the llama2.c path's logits (single file, tied)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(hfConfig(C)));
    await Deno.writeFile(`${dir}/model.safetensors`, writeSafetensors(hfTensors(W, C, "f32", false)));
    const m = await Model.load({ modelPath: dir, tokenizerPath: STORIES260K.tokenizer });
    try {
      assertEquals(m.config.headDim, C.headDim);
      const out = await m.prefill(PROMPT);
      assert(maxDiff(out.logits, refOut.logits) <= 1e-4, `diff ${maxDiff(out.logits, refOut.logits)}`);
      assert(maxDiff(out.layers[2].keys, refOut.layers[2].keys) <= 1e-5);
    } finally {
      await m.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Model.load() reads sharded bf16 checkpoints with an untied lm_head", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const tensors = hfTensors(W, C, "bf16", true);
    const names = Object.keys(tensors);
    const shards = [names.slice(0, 20), names.slice(20)];
    const weightMap: Record<string, string> = {};
    for (const [i, shard] of shards.entries()) {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      await Deno.writeFile(
        `${dir}/${file}`,
        writeSafetensors(Object.fromEntries(shard.map((n) => [n, tensors[n]]))),
      );
      for (const n of shard) weightMap[n] = file;
    }
    await Deno.writeTextFile(
      `${dir}/model.safetensors.index.json`,
      JSON.stringify({ weight_map: weightMap }),
    );
    await Deno.writeTextFile(
      `${dir}/config.json`,
      JSON.stringify(hfConfig(C, { tie_word_embeddings: false })),
    );
    const m = await Model.load({ modelPath: dir, tokenizerPath: STORIES260K.tokenizer });
    try {
      const out = await m.prefill(PROMPT);
      // bf16 weights: same argmax and close logits, not equal ones.
      const argmax = (a: Float32Array) => a.indexOf(Math.max(...a));
      assertEquals(argmax(out.logits), argmax(refOut.logits));
      assert(maxDiff(out.logits, refOut.logits) < 0.5, `bf16 diff ${maxDiff(out.logits, refOut.logits)}`);
    } finally {
      await m.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hfConfigToModelConfig() reads head_dim and rejects unsupported configs", () => {
  const base = hfConfig(C, { head_dim: 16, architectures: ["Qwen2ForCausalLM"], sliding_window: 128 });
  const { config, tied } = hfConfigToModelConfig(base, "x");
  assertEquals([config.headDim, config.maxSeqLen, tied], [16, 128, true]);
  assertThrows(
    () => hfConfigToModelConfig({ ...base, rope_scaling: { type: "yarn", factor: 4 } }, "x"),
    CheckpointFormatError,
    "rope_scaling",
  );
  assertThrows(
    () => hfConfigToModelConfig({ ...base, architectures: ["GPT2LMHeadModel"] }, "x"),
    CheckpointFormatError,
  );
  assertThrows(() => hfConfigToModelConfig({ ...base, num_key_value_heads: 3 }, "x"), CheckpointFormatError);
});

Deno.test("Model.load() on a Hugging Face folder reports missing tensors as bad_request", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(hfConfig(C)));
    const t = hfTensors(W, C, "f16", false);
    delete t["model.layers.3.mlp.up_proj.weight"];
    await Deno.writeFile(`${dir}/model.safetensors`, writeSafetensors(t));
    const err = await assertRejects(
      () => Model.load({ modelPath: dir, tokenizerPath: STORIES260K.tokenizer }),
      CheckpointFormatError,
    );
    assertEquals(err.code, "bad_request");
    assert(err.message.includes("model.layers.3.mlp.up_proj.weight"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Model.load() applies Qwen2 q/k/v biases as the pure-TS reference does", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const q = C.nHeads * C.headDim;
    const kv = C.nKvHeads * C.headDim;
    const wave = (n: number, s: number) =>
      Float32Array.from({ length: n }, (_, i) => 0.3 * Math.sin(i * s + 1));
    const layers = W.layers.map((l, i) => ({
      ...l,
      bq: wave(q, 0.7 + i),
      bk: wave(kv, 1.3 + i),
      bv: wave(kv, 2.1 + i),
    }));
    const biased: LlamaWeights = { ...W, layers };
    const tensors = hfTensors(biased, C, "f32", false);
    layers.forEach((l, i) => {
      tensors[`model.layers.${i}.self_attn.q_proj.bias`] = fromFloat32(l.bq, [q], "f32");
      tensors[`model.layers.${i}.self_attn.k_proj.bias`] = fromFloat32(l.bk, [kv], "f32");
      tensors[`model.layers.${i}.self_attn.v_proj.bias`] = fromFloat32(l.bv, [kv], "f32");
    });
    await Deno.writeFile(`${dir}/model.safetensors`, writeSafetensors(tensors));
    await Deno.writeTextFile(
      `${dir}/config.json`,
      JSON.stringify(hfConfig(C, { architectures: ["Qwen2ForCausalLM"] })),
    );
    const m = await Model.load({ modelPath: dir, tokenizerPath: STORIES260K.tokenizer });
    try {
      const ids = PROMPT.slice(0, 6);
      const out = await m.prefill(ids);
      const cache: HeadCache[][] = Array.from(
        { length: C.nLayers },
        () => Array.from({ length: C.nKvHeads }, () => ({ keys: [], values: [] })),
      );
      let ref;
      for (let t = 0; t < ids.length; t++) {
        ref = referenceStep(C, biased, { token: ids[t], pos: t, cache });
        ref.newKeys.forEach((ks, l) => ks.forEach((k, h) => cache[l][h].keys.push(k)));
        ref.newValues.forEach((vs, l) => vs.forEach((v, h) => cache[l][h].values.push(v)));
      }
      assert(maxDiff(out.logits, ref!.logits) <= 1e-4, `diff ${maxDiff(out.logits, ref!.logits)}`);
      assert(maxDiff(out.logits, refOut.logits) > 1e-2, "biases had no effect");
    } finally {
      await m.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Model.load() runs a checkpoint whose head_dim is twice hidden/heads", async () => {
  // The second model's shape in small: 128-wide heads on a 512-wide residual stream.
  const dir = await Deno.makeTempDir();
  try {
    const hd = 2 * C.headDim;
    const wide: ModelConfig = { ...C, headDim: hd };
    const q = C.nHeads * hd;
    const kv = C.nKvHeads * hd;
    const wave = (n: number, s: number) =>
      Float32Array.from({ length: n }, (_, i) => 0.1 * Math.sin(i * s + 1));
    const layers = W.layers.map((l, i) => ({
      ...l,
      wq: wave(q * C.dim, 0.37 + i),
      wk: wave(kv * C.dim, 0.53 + i),
      wv: wave(kv * C.dim, 0.71 + i),
      wo: wave(C.dim * q, 0.89 + i),
    }));
    const weights: LlamaWeights = { ...W, layers };
    await Deno.writeFile(
      `${dir}/model.safetensors`,
      writeSafetensors(hfTensors(weights, wide, "f32", false)),
    );
    await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(hfConfig(C, { head_dim: hd })));
    const m = await Model.load({ modelPath: dir, tokenizerPath: STORIES260K.tokenizer });
    try {
      assertEquals(m.config.headDim, hd);
      const ids = PROMPT.slice(0, 6);
      const out = await m.prefill(ids);
      assertEquals(out.layers[0].keys.length, C.nKvHeads * ids.length * hd);
      const cache: HeadCache[][] = Array.from(
        { length: C.nLayers },
        () => Array.from({ length: C.nKvHeads }, () => ({ keys: [], values: [] })),
      );
      let ref;
      for (let t = 0; t < ids.length; t++) {
        ref = referenceStep(wide, weights, { token: ids[t], pos: t, cache });
        ref.newKeys.forEach((ks, l) => ks.forEach((k, h) => cache[l][h].keys.push(k)));
        ref.newValues.forEach((vs, l) => vs.forEach((v, h) => cache[l][h].values.push(v)));
      }
      assert(maxDiff(out.logits, ref!.logits) <= 1e-4, `diff ${maxDiff(out.logits, ref!.logits)}`);
      assert(maxDiff(out.logits, refOut.logits) > 1e-2, "the wide attention weights had no effect");
    } finally {
      await m.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
