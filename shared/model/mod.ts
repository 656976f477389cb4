/**
 * The model runtime: load a Llama-family checkpoint, prefill a prompt (KV cache and
 * KV-Compress metric out), decode batches against per-head caches, sample.
 *
 * @example
 * ```ts
 * import { generateDense, Model } from "./mod.ts";
 * const model = await Model.load({ modelPath: "stories260K.bin", tokenizerPath: "tok512.bin" });
 * const ids = await generateDense(model, model.tokenizer.encode(""), { maxTokens: 50 });
 * console.log(model.tokenizer.decode(ids));
 * await model.close();
 * ```
 * @module
 */
export type { ModelConfig } from "./config.ts";
export type { LayerWeights, LlamaWeights } from "./weights.ts";
export {
  DEFAULT_OBSERVATION_WINDOW,
  type FromWeightsOptions,
  type KeptDecodeOutput,
  type KeptStep,
  Model,
  type ModelLoadOptions,
} from "./model.ts";
export type { AttentionLayout, DecodeBatch, DecodeOutput, LayerKv, PrefillOutput } from "./steps.ts";
export { KeptKv } from "./kept_kv.ts";
export { type AdapterProbe, isSoftwareAdapter, type ModelDevice, probeAdapter } from "./device.ts";
export { CheckpointFormatError, parseLlama2cCheckpoint } from "./llama2c_checkpoint.ts";
export { HF_ARCHITECTURES, hfConfigToModelConfig, loadHfCheckpoint } from "./hf_checkpoint.ts";
export { validateConfig } from "./config.ts";
export { validateWeights } from "./weights.ts";
export { sampleToken } from "./sample.ts";
export { generateDense } from "./generate.ts";
export type { Tokenizer } from "../tokenizer/mod.ts";
