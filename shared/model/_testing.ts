/**
 * What the model tests share: the two models they run on and a tolerance comparison.
 * Test-only; nothing outside `*_test.ts` imports it.
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { STORIES260K } from "../../tests/_harness/paths.ts";
import { EMBEDDED_MODEL_DIR } from "../config/mod.ts";
import type { ModelLoadOptions } from "./model.ts";

/** stories260K (llama2.c checkpoint, MHA) and the embedded kvrelay-tiny (HF folder, GQA). */
export const TEST_MODELS: readonly { name: string; load: ModelLoadOptions }[] = [
  { name: "stories260K", load: { modelPath: STORIES260K.model, tokenizerPath: STORIES260K.tokenizer } },
  { name: "kvrelay-tiny", load: { modelPath: EMBEDDED_MODEL_DIR } },
];

/** Options of {@linkcode assertClose}. */
export interface CloseOptions {
  /** The largest |actual - expected| allowed. */
  tol: number;
  /** Scale `tol` by max(1, max |expected|): a relative bound for values of any size. */
  scaled?: boolean;
  /** What is compared, for the message. */
  what?: string;
}

/**
 * Asserts equal lengths and max |actual - expected| ≤ tol (· max(1, max |expected|) when
 * `scaled`).
 *
 * @example
 * ```ts
 * assertClose([1, 2.00001], [1, 2], { tol: 1e-4, what: "logits" });
 * ```
 */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  opts: CloseOptions,
): void {
  const what = opts.what ?? "values";
  assertEquals(actual.length, expected.length, `${what}: length`);
  let worst = 0, scale = 1;
  for (let i = 0; i < actual.length; i++) {
    worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  const bound = opts.tol * (opts.scaled ? scale : 1);
  assert(worst <= bound, `${what}: max |diff| ${worst} > ${bound}`);
}
