/**
 * Reads a Hugging Face Llama-family folder: `config.json` plus `model.safetensors` or
 * shards listed in `model.safetensors.index.json` (F32, F16 or BF16, converted to fp32; or
 * matrices in 8 bits with row scales where `config.json` declares it, see `int8_weights.ts`).
 * Architectures: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM (q/k/v biases).
 * HF checkpoints already use the rotate-half RoPE layout the runtime uses, so weights are
 * taken as they are. Every problem is a `CheckpointFormatError` (`bad_request`).
 * @module
 */
import { toFloat32 } from "../dtype/mod.ts";
import { parseSafetensors, type Safetensors } from "../safetensors/mod.ts";
import { type ModelConfig, validateConfig } from "./config.ts";
import { declaredQuantization, INT8_ROWS_METHOD, scaleTensorName, widenRows } from "./int8_weights.ts";
import { CheckpointFormatError } from "./llama2c_checkpoint.ts";
import type { LayerWeights, LlamaWeights } from "./weights.ts";

/** Architectures this loader understands. */
export const HF_ARCHITECTURES = ["LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"] as const;

type Json = Record<string, unknown>;

/** A JSON object read from `path`; a missing, unreadable or malformed file is a `CheckpointFormatError`. */
export async function readJson(path: string): Promise<Json> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw new CheckpointFormatError(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const v = JSON.parse(text);
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new TypeError("not a JSON object");
    return v;
  } catch (err) {
    throw new CheckpointFormatError(`${path} is not a JSON object: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

function int(cfg: Json, key: string, fallback?: number): number {
  const v = cfg[key] ?? fallback;
  if (typeof v !== "number" || !Number.isInteger(v)) {
    throw new CheckpointFormatError(`config.json: ${key} = ${JSON.stringify(v)} is not an integer`);
  }
  return v;
}

function num(cfg: Json, key: string, fallback: number): number {
  const v = cfg[key] ?? fallback;
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new CheckpointFormatError(`config.json: ${key} = ${JSON.stringify(v)} is not a number`);
  }
  return v;
}

/** Maps a parsed `config.json` to a `ModelConfig`; unsupported features are errors. */
export function hfConfigToModelConfig(
  cfg: Json,
  name: string,
): { config: ModelConfig; tied: boolean; int8: boolean } {
  const arch = Array.isArray(cfg.architectures) ? cfg.architectures[0] : undefined;
  if (!HF_ARCHITECTURES.includes(arch as typeof HF_ARCHITECTURES[number])) {
    throw new CheckpointFormatError(
      `architecture ${JSON.stringify(arch)} is not supported (supported: ${HF_ARCHITECTURES.join(", ")})`,
    );
  }
  const scaling = cfg.rope_scaling as Json | null | undefined;
  if (scaling != null) {
    const type = scaling.rope_type ?? scaling.type;
    if (type !== "default") {
      throw new CheckpointFormatError(`rope_scaling ${JSON.stringify(scaling)} is not supported (only none)`);
    }
  }
  if (cfg.hidden_act !== undefined && cfg.hidden_act !== "silu") {
    throw new CheckpointFormatError(
      `hidden_act ${JSON.stringify(cfg.hidden_act)} is not supported (only silu)`,
    );
  }
  let quantization: ReturnType<typeof declaredQuantization>;
  try {
    quantization = declaredQuantization(cfg);
  } catch (err) {
    throw new CheckpointFormatError(`config.json: ${(err as Error).message}`, { cause: err });
  }
  const dim = int(cfg, "hidden_size");
  const nHeads = int(cfg, "num_attention_heads");
  let maxSeqLen = int(cfg, "max_position_embeddings", 2048);
  // A sliding window only changes attention beyond its length: cap the context at it.
  const window = cfg.use_sliding_window === false ? null : cfg.sliding_window;
  if (typeof window === "number" && window > 0 && window < maxSeqLen) maxSeqLen = window;
  const config: ModelConfig = {
    name,
    dim,
    hiddenDim: int(cfg, "intermediate_size"),
    nLayers: int(cfg, "num_hidden_layers"),
    nHeads,
    nKvHeads: int(cfg, "num_key_value_heads", nHeads),
    headDim: int(cfg, "head_dim", nHeads > 0 ? Math.floor(dim / nHeads) : 0),
    vocabSize: int(cfg, "vocab_size"),
    maxSeqLen,
    ropeTheta: num(cfg, "rope_theta", 10000),
    normEps: num(cfg, "rms_norm_eps", 1e-6),
  };
  try {
    validateConfig(config);
  } catch (err) {
    throw new CheckpointFormatError((err as Error).message, { cause: err });
  }
  return { config, tied: cfg.tie_word_embeddings === true, int8: quantization === INT8_ROWS_METHOD };
}

/** A folder's safetensors files, by file name, and a lookup from tensor name to its file. */
export interface CheckpointTensors {
  files: Map<string, Safetensors>;
  find(name: string): Safetensors | undefined;
}

/** Opens every safetensors file of the folder (one file, or the shards its index lists). */
export async function openCheckpointTensors(dir: string): Promise<CheckpointTensors> {
  const indexPath = `${dir}/model.safetensors.index.json`;
  let files: string[];
  let byName: Map<string, string> | undefined;
  try {
    await Deno.stat(indexPath);
    const index = await readJson(indexPath);
    const map = index.weight_map as Record<string, string> | undefined;
    if (typeof map !== "object" || map === null) {
      throw new CheckpointFormatError(`${indexPath}: no weight_map`);
    }
    byName = new Map(Object.entries(map));
    files = [...new Set(byName.values())];
  } catch (err) {
    if (err instanceof CheckpointFormatError) throw err;
    files = ["model.safetensors"];
  }
  const opened = new Map<string, Safetensors>();
  for (const f of files) {
    if (f.includes("/") || f.includes("..")) {
      throw new CheckpointFormatError(`shard name ${f} leaves the folder`);
    }
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(`${dir}/${f}`);
    } catch (err) {
      throw new CheckpointFormatError(`cannot read ${dir}/${f}: ${(err as Error).message}`, { cause: err });
    }
    try {
      opened.set(f, parseSafetensors(bytes));
    } catch (err) {
      throw new CheckpointFormatError(`${dir}/${f}: ${(err as Error).message}`, { cause: err });
    }
  }
  const find = (name: string) => {
    if (byName) {
      const f = byName.get(name);
      return f === undefined ? undefined : opened.get(f);
    }
    for (const st of opened.values()) if (st.entries.has(name)) return st;
    return undefined;
  };
  return { files: opened, find };
}

/** Loads config and weights (runtime layout) from a Hugging Face folder. */
export async function loadHfCheckpoint(dir: string): Promise<{ config: ModelConfig; weights: LlamaWeights }> {
  const name = dir.replace(/\/+$/, "").split("/").pop() ?? "hf";
  const { config, tied, int8 } = hfConfigToModelConfig(await readJson(`${dir}/config.json`), name);
  const { find } = await openCheckpointTensors(dir);
  // An I8 matrix is widened with its row scales; only a folder that declares it may hold one.
  const widenInt8 = (st: Safetensors, key: string, shape: number[]): Float32Array => {
    if (!int8) {
      throw new CheckpointFormatError(
        `tensor ${key} is I8 but config.json declares no quantization_config "${INT8_ROWS_METHOD}"`,
      );
    }
    if (shape.length !== 2) throw new CheckpointFormatError(`tensor ${key} is I8 but not a matrix`);
    const sName = scaleTensorName(key);
    const sFile = find(sName);
    const sEntry = sFile?.entries.get(sName);
    if (!sFile || !sEntry) throw new CheckpointFormatError(`tensor ${key} is I8 and ${sName} is missing`);
    if (sEntry.shape.join(",") !== String(shape[0])) {
      throw new CheckpointFormatError(`tensor ${sName} has shape [${sEntry.shape}], expected [${shape[0]}]`);
    }
    const scale = toFloat32(sFile.tensor(sName));
    if (!scale.every((s) => Number.isFinite(s) && s >= 0)) {
      throw new CheckpointFormatError(`tensor ${sName} holds a negative or non-finite scale`);
    }
    const raw = st.bytes(key);
    const q = new Int8Array(raw.buffer, raw.byteOffset, raw.length);
    return widenRows({ q, scale }, shape[0], shape[1]);
  };
  const get = (key: string, shape: number[], optional = false): Float32Array | undefined => {
    const st = find(key);
    if (!st || !st.entries.has(key)) {
      if (optional) return undefined;
      throw new CheckpointFormatError(`tensor ${key} is missing`);
    }
    const e = st.entries.get(key)!;
    if (e.shape.join(",") !== shape.join(",")) {
      throw new CheckpointFormatError(`tensor ${key} has shape [${e.shape}], expected [${shape}]`);
    }
    try {
      if (e.dtype === "I8") return widenInt8(st, key, shape);
      return toFloat32(st.tensor(key)); // tensor() already copies
    } catch (err) {
      if (err instanceof CheckpointFormatError) throw err;
      throw new CheckpointFormatError(`tensor ${key}: ${(err as Error).message}`, { cause: err });
    }
  };
  const must = (key: string, shape: number[]) => get(key, shape)!;
  const { dim, hiddenDim, vocabSize } = config;
  const q = config.nHeads * config.headDim;
  const kv = config.nKvHeads * config.headDim;
  const layers: LayerWeights[] = [];
  for (let l = 0; l < config.nLayers; l++) {
    const p = `model.layers.${l}.`;
    if (find(`${p}self_attn.o_proj.bias`)) {
      throw new CheckpointFormatError(`${p}self_attn.o_proj.bias is not supported`);
    }
    layers.push({
      attnNorm: must(`${p}input_layernorm.weight`, [dim]),
      wq: must(`${p}self_attn.q_proj.weight`, [q, dim]),
      wk: must(`${p}self_attn.k_proj.weight`, [kv, dim]),
      wv: must(`${p}self_attn.v_proj.weight`, [kv, dim]),
      wo: must(`${p}self_attn.o_proj.weight`, [dim, q]),
      bq: get(`${p}self_attn.q_proj.bias`, [q], true),
      bk: get(`${p}self_attn.k_proj.bias`, [kv], true),
      bv: get(`${p}self_attn.v_proj.bias`, [kv], true),
      ffnNorm: must(`${p}post_attention_layernorm.weight`, [dim]),
      w1: must(`${p}mlp.gate_proj.weight`, [hiddenDim, dim]),
      w2: must(`${p}mlp.down_proj.weight`, [dim, hiddenDim]),
      w3: must(`${p}mlp.up_proj.weight`, [hiddenDim, dim]),
    });
  }
  const tokEmb = must("model.embed_tokens.weight", [vocabSize, dim]);
  const classifier = tied ? undefined : get("lm_head.weight", [vocabSize, dim], true);
  if (!tied && !classifier) {
    throw new CheckpointFormatError("lm_head.weight is missing and embeddings are not tied");
  }
  return { config, weights: { tokEmb, layers, finalNorm: must("model.norm.weight", [dim]), classifier } };
}
