/**
 * A Hugging Face Llama folder of random weights in the layout infra/train/train.py exports
 * (its `hf_config` fields in config.json, fp16 `model.safetensors`, tied embeddings, no
 * `lm_head.weight`), so the runtime can run a model's shape before the model is trained. The
 * tokenizer is kvrelay-tiny's, its vocabulary padded with plain tokens to the shape's size
 * (decodable, never produced by encoding). Test-only; nothing outside `*_test.ts` imports it.
 * @module
 */
import { fromFloat32, type Tensor } from "../dtype/mod.ts";
import { writeSafetensors } from "../safetensors/mod.ts";
import { EMBEDDED_MODEL_DIR } from "../config/mod.ts";
import { seededRng } from "./sampling/rng.ts";

/** A Llama shape, named as infra/train/train.py's flags name it. */
export interface CheckpointShape {
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  vocab: number;
  context: number;
  ropeTheta: number;
}

/** kvrelay-small as infra/train/run_second.sh trains it (6 layers; tests may take fewer). */
export const SMALL_MODEL_SHAPE: Readonly<CheckpointShape> = {
  layers: 6,
  hidden: 512,
  heads: 8,
  kvHeads: 4,
  headDim: 128,
  intermediate: 1536,
  vocab: 8192,
  context: 4096,
  ropeTheta: 10000,
};

/** train.py's `hf_config` for `s` (bos 0, eos 1, pad 2, as kvrelay-tiny's tokenizer has them). */
function hfConfig(s: CheckpointShape): Record<string, unknown> {
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    vocab_size: s.vocab,
    hidden_size: s.hidden,
    intermediate_size: s.intermediate,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads,
    head_dim: s.headDim,
    hidden_act: "silu",
    max_position_embeddings: s.context,
    rms_norm_eps: 1e-5,
    rope_theta: s.ropeTheta,
    rope_scaling: null,
    attention_bias: false,
    attention_dropout: 0.0,
    mlp_bias: false,
    initializer_range: 0.02,
    pretraining_tp: 1,
    use_cache: true,
    tie_word_embeddings: true,
    bos_token_id: 0,
    eos_token_id: 1,
    pad_token_id: 2,
    torch_dtype: "float16",
  };
}

/**
 * The tensors train.py's export writes for `s`: matrices of its init's spread (standard
 * deviation 0.02, drawn uniform: a Gaussian costs 5x the time and tests nothing more), unit norms.
 */
function randomTensors(s: CheckpointShape, seed: number): Record<string, Tensor> {
  const rnd = seededRng(seed);
  const half = 0.02 * Math.sqrt(3); // U(-a, a) has standard deviation a / sqrt(3)
  const spread = (n: number) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = (2 * rnd() - 1) * half;
    return a;
  };
  const out: Record<string, Tensor> = {};
  const put = (name: string, shape: number[], a?: Float32Array) =>
    out[name] = fromFloat32(a ?? spread(shape[0] * (shape[1] ?? 1)), shape, "f16");
  const ones = (n: number) => new Float32Array(n).fill(1);
  const q = s.heads * s.headDim, kv = s.kvHeads * s.headDim;
  put("model.embed_tokens.weight", [s.vocab, s.hidden]);
  for (let l = 0; l < s.layers; l++) {
    const p = `model.layers.${l}.`;
    put(`${p}input_layernorm.weight`, [s.hidden], ones(s.hidden));
    put(`${p}self_attn.q_proj.weight`, [q, s.hidden]);
    put(`${p}self_attn.k_proj.weight`, [kv, s.hidden]);
    put(`${p}self_attn.v_proj.weight`, [kv, s.hidden]);
    put(`${p}self_attn.o_proj.weight`, [s.hidden, q]);
    put(`${p}post_attention_layernorm.weight`, [s.hidden], ones(s.hidden));
    put(`${p}mlp.gate_proj.weight`, [s.intermediate, s.hidden]);
    put(`${p}mlp.up_proj.weight`, [s.intermediate, s.hidden]);
    put(`${p}mlp.down_proj.weight`, [s.hidden, s.intermediate]);
  }
  put("model.norm.weight", [s.hidden], ones(s.hidden));
  return out;
}

/** kvrelay-tiny's tokenizer.json with plain tokens `<tN>` added up to `vocab` entries. */
async function paddedTokenizer(vocab: number): Promise<string> {
  const json = JSON.parse(await Deno.readTextFile(`${EMBEDDED_MODEL_DIR}/tokenizer.json`));
  const v = json.model.vocab as Record<string, number>;
  for (let id = Object.keys(v).length; id < vocab; id++) v[`<t${id}>`] = id;
  return JSON.stringify(json);
}

/**
 * Writes a random-weight checkpoint of shape `s` into `dir` (which must exist): config.json,
 * model.safetensors, tokenizer.json, tokenizer_config.json. The same seed gives the same bytes.
 *
 * @example
 * ```ts ignore
 * import { SMALL_MODEL_SHAPE, writeRandomCheckpoint } from "./_random_checkpoint.ts";
 * const dir = await Deno.makeTempDir();
 * await writeRandomCheckpoint(dir, { ...SMALL_MODEL_SHAPE, layers: 2 });
 * ```
 */
export async function writeRandomCheckpoint(dir: string, s: CheckpointShape, seed = 1): Promise<void> {
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(hfConfig(s), null, 2));
  await Deno.writeFile(`${dir}/model.safetensors`, writeSafetensors(randomTensors(s, seed)));
  await Deno.writeTextFile(`${dir}/tokenizer.json`, await paddedTokenizer(s.vocab));
  await Deno.copyFile(`${EMBEDDED_MODEL_DIR}/tokenizer_config.json`, `${dir}/tokenizer_config.json`);
}
