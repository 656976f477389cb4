/**
 * Log-probabilities of a step: the chosen token's and the `k` most likely, from the
 * processed logits before temperature (so at temperature 0 the chosen token is the most
 * likely one). A banned token's -Infinity is reported as -9999, as vLLM does, since JSON has
 * no infinity.
 *
 * @example
 * ```ts
 * import { tokenLogprobs } from "./logprobs.ts";
 * const lp = tokenLogprobs(Float32Array.of(0, 0), 1, 1);
 * lp.logprob; // Math.log(0.5)
 * ```
 * @module
 */
import { logNormalizer } from "./distribution.ts";

/** The chosen token's log-probability and the `k` best alternatives, most likely first. */
export interface StepLogprobs {
  logprob: number;
  top: { id: number; logprob: number }[];
}

/** What JSON carries for a log-probability of -Infinity. */
export const MIN_LOGPROB = -9999;

/** Most alternatives a request may ask for (OpenAI's limit for chat's `top_logprobs`). */
export const MAX_TOP_LOGPROBS = 20;

export function tokenLogprobs(logits: Float32Array, chosen: number, k: number): StepLogprobs {
  const logZ = logNormalizer(logits);
  const lp = (id: number) => Math.max(MIN_LOGPROB, logits[id] - logZ);
  const top: { id: number; logprob: number }[] = [];
  if (k > 0) {
    // Partial selection: k is small next to the vocabulary.
    const best: number[] = [];
    for (let i = 0; i < logits.length; i++) {
      if (best.length === k && logits[i] <= logits[best[k - 1]]) continue;
      let j = best.length < k ? best.length : k - 1;
      best[j] = i;
      while (j > 0 && logits[best[j]] > logits[best[j - 1]]) {
        [best[j], best[j - 1]] = [best[j - 1], best[j]];
        j--;
      }
    }
    for (const id of best) top.push({ id, logprob: lp(id) });
  }
  return { logprob: lp(chosen), top };
}
