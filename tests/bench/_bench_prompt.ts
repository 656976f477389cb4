/**
 * The long prompt the benches cut to a token count when they need a model's real KV of a given
 * length: the project's own prose, the model card first (6,037 tokens with kvrelay-tiny's
 * tokenizer, so a prompt of up to 6k tokens does not change when the READMEs do).
 * @module
 */
import { REPO_DIR } from "../_harness/paths.ts";

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
