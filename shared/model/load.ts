/**
 * Picks the loader for a model path: a llama2.c `.bin` file or a Hugging Face folder, and
 * the tokenizer: `tokenizer.bin` (llama2.c) or `tokenizer.json` (Hugging Face).
 * Every failure to find or parse a checkpoint is a `bad_request` with the path in it.
 * @module
 */
import { KvrelayError } from "../errors.ts";
import { HfTokenizer, Llama2cTokenizer, type Tokenizer } from "../tokenizer/mod.ts";
import type { ModelConfig } from "./config.ts";
import { loadHfCheckpoint } from "./hf_checkpoint.ts";
import { parseLlama2cCheckpoint } from "./llama2c_checkpoint.ts";
import { type LlamaWeights, validateWeights } from "./weights.ts";

async function statOrThrow(path: string, what: string): Promise<Deno.FileInfo> {
  try {
    return await Deno.stat(path);
  } catch (err) {
    throw new KvrelayError("bad_request", `${what} ${path} cannot be read: ${(err as Error).message}`, {
      cause: err,
      param: "modelPath",
    });
  }
}

function basename(path: string): string {
  return path.replace(/\/+$/, "").split("/").pop()!.replace(/\.bin$/, "");
}

/** Loads config, weights (runtime layout) and tokenizer from `modelPath`. */
export async function loadCheckpoint(
  modelPath: string,
  tokenizerPath?: string,
): Promise<{ config: ModelConfig; weights: LlamaWeights; tokenizer: Tokenizer }> {
  if (typeof modelPath !== "string" || modelPath === "") {
    throw new KvrelayError("bad_request", "modelPath is required", { param: "modelPath" });
  }
  const info = await statOrThrow(modelPath, "checkpoint");
  const { config, weights } = info.isDirectory
    ? await loadHfCheckpoint(modelPath)
    : parseLlama2cCheckpoint(await Deno.readFile(modelPath), { name: basename(modelPath) });
  validateWeights(config, weights);
  const tokPath = tokenizerPath ??
    (info.isDirectory
      ? `${modelPath.replace(/\/+$/, "")}/tokenizer.json`
      : modelPath.replace(/[^/]*$/, "tokenizer.bin"));
  await statOrThrow(tokPath, "tokenizer");
  const tokenizer = tokPath.endsWith(".json")
    ? await HfTokenizer.load(tokPath)
    : await Llama2cTokenizer.load(tokPath, { vocabSize: config.vocabSize });
  if (tokenizer.vocabSize > config.vocabSize) {
    throw new KvrelayError(
      "bad_request",
      `tokenizer ${tokPath} has ${tokenizer.vocabSize} tokens, model vocabulary is ${config.vocabSize}`,
      { param: "tokenizerPath" },
    );
  }
  return { config, weights, tokenizer };
}
