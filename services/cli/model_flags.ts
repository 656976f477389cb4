/**
 * The flags that every model-running command shares (`--model`, `--tokenizer`, `--device`,
 * `--prompt`, `--prompt-file`) and their meaning, in one place.
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { type Config, loadConfig } from "../../shared/config/mod.ts";
import { badRequest } from "../../shared/errors.ts";
import { selectGpu } from "../../shared/webgpu/gpu_select/select.ts";

export const MODEL_FLAGS = {
  model: { type: "string" },
  tokenizer: { type: "string" },
  /** cpu | webgpu | auto: where the model runs (KVRELAY_DEVICE). */
  device: { type: "string" },
  prompt: { type: "string" },
  "prompt-file": { type: "string" },
} as const;

/** Strict `parseArgs`; an unknown or malformed flag is a `bad_request`. */
export function parseFlags<O extends NonNullable<ParseArgsConfig["options"]>>(args: string[], options: O) {
  try {
    return parseArgs({ args, options, strict: true }).values;
  } catch (e) {
    throw badRequest((e as Error).message);
  }
}

/**
 * The configuration, with `--model`/`--tokenizer`/`--device` taking the place of
 * KVRELAY_MODEL/KVRELAY_TOKENIZER/KVRELAY_DEVICE (validated the same way). KVRELAY_GPU pins
 * the command to its GPU here, before anything touches one, as a service's start does.
 */
export function configFromFlags(v: { model?: string; tokenizer?: string; device?: string }): Config {
  const env = Deno.env.toObject();
  if (v.model) env.KVRELAY_MODEL = v.model;
  if (v.tokenizer) env.KVRELAY_TOKENIZER = v.tokenizer;
  if (v.device) env.KVRELAY_DEVICE = v.device;
  const config = loadConfig(env);
  selectGpu(config.gpu);
  return config;
}

/** The prompt text from `--prompt` or `--prompt-file` (not both); undefined when neither is given. */
export async function readPrompt(
  v: { prompt?: string; "prompt-file"?: string },
): Promise<string | undefined> {
  if (v.prompt !== undefined && v["prompt-file"] !== undefined) {
    throw badRequest("give --prompt or --prompt-file, not both");
  }
  return v["prompt-file"] !== undefined ? await Deno.readTextFile(v["prompt-file"]) : v.prompt;
}
