/**
 * The long prompt the benches cut to a token count when they need a model's real KV of a given
 * length: the project's own prose, the model card first (6,037 tokens with kvrelay-tiny's
 * tokenizer, so a prompt of up to 6k tokens does not change when the READMEs do).
 * @module
 */
import { REPO_DIR } from "../_harness/paths.ts";
import { loadConfig } from "../../shared/config/mod.ts";
import { loadConfiguredModel } from "../../shared/pipeline/load_model.ts";

/** The files joined, in order (paths from the repository root). */
export const BENCH_PROMPT_FILES = [
  "infra/model/kvrelay-tiny/TRAINING.md",
  "README.md",
  "tests/bench/README.md",
];

/** The files' text, joined by blank lines. */
export function benchPromptText(): string {
  return BENCH_PROMPT_FILES.map((p) => Deno.readTextFileSync(`${REPO_DIR}/${p}`)).join("\n\n");
}

/**
 * The prompt's ids in the configured model's tokenizer (the model the services load), cut to
 * each of `lengths` and to the context less `reserve` (room for the generated tokens). The model
 * is loaded on the CPU: only its tokenizer and context length are wanted.
 */
export async function benchPromptIds(lengths: number[], reserve = 0): Promise<Map<number, number[]>> {
  const model = await loadConfiguredModel(loadConfig({ ...Deno.env.toObject(), KVRELAY_DEVICE: "cpu" }));
  try {
    const ids = model.tokenizer.encode(benchPromptText());
    const room = model.config.maxSeqLen - reserve - 2;
    if (room < 1) {
      throw new RangeError(`no room for a prompt: ${reserve} tokens reserved of ${model.config.maxSeqLen}`);
    }
    return new Map(lengths.map((t) => [t, ids.slice(0, Math.min(t, room))]));
  } finally {
    await model.close();
  }
}
