/**
 * What a request does to the logits before a token is picked, in vLLM's order: repetition
 * penalty (over prompt and output tokens), frequency and presence penalties (over output
 * tokens), logit bias, and the `min_tokens` ban on ending tokens. Temperature and top-p come
 * after, in `sampleToken`.
 *
 * @example
 * ```ts
 * import { processLogits } from "./logits_processors.ts";
 * const out = processLogits(Float32Array.of(1, 2, 3), {
 *   params: { logitBias: [{ id: 2, bias: -100 }] },
 *   outputCounts: new Map(),
 *   generated: 0,
 *   endIds: [],
 * });
 * out[2]; // -Infinity: a bias of -100 bans the token
 * ```
 * @module
 */

/** Per-request knobs of the logits (OpenAI's and vLLM's names, camel-cased). */
export interface LogitsParams {
  /** OpenAI's: subtracted once from every token already generated; in [-2, 2]. */
  presencePenalty?: number;
  /** OpenAI's: subtracted per occurrence in the output; in [-2, 2]. */
  frequencyPenalty?: number;
  /** vLLM's: divides positive and multiplies negative logits of prompt and output tokens; > 0. */
  repetitionPenalty?: number;
  /** Added to a token's logit; -100 bans it, 100 all but forces it. */
  logitBias?: { id: number; bias: number }[];
  /** Ending tokens (EOS, `stop_token_ids`) are banned until this many tokens were generated. */
  minTokens?: number;
}

/** A bias at or below this bans the token outright, as OpenAI documents for -100. */
const BAN_BIAS = -100;

export interface LogitsState {
  params: LogitsParams;
  /** Output token id → how often it was generated so far. */
  outputCounts: Map<number, number>;
  /** Prompt token ids, for the repetition penalty (empty when it is off). */
  promptIds?: ReadonlySet<number>;
  /** Tokens generated so far (for `minTokens`). */
  generated: number;
  /** Tokens that end a sequence: banned while `generated < minTokens`. */
  endIds: readonly number[];
}

/** The processed logits (a copy; `logits` itself is left alone). */
export function processLogits(logits: Float32Array, s: LogitsState): Float32Array {
  const out = new Float32Array(logits);
  const p = s.params;
  const rep = p.repetitionPenalty ?? 1;
  if (rep !== 1) {
    const seen = new Set<number>(s.promptIds ?? []);
    for (const id of s.outputCounts.keys()) seen.add(id);
    for (const id of seen) {
      if (id < out.length) out[id] = out[id] > 0 ? out[id] / rep : out[id] * rep;
    }
  }
  const freq = p.frequencyPenalty ?? 0;
  const pres = p.presencePenalty ?? 0;
  if (freq !== 0 || pres !== 0) {
    for (const [id, n] of s.outputCounts) if (id < out.length) out[id] -= freq * n + pres;
  }
  for (const { id, bias } of p.logitBias ?? []) {
    if (id < out.length) out[id] = bias <= BAN_BIAS ? -Infinity : out[id] + bias;
  }
  if (s.generated < (p.minTokens ?? 0)) {
    for (const id of s.endIds) {
      if (id < out.length) out[id] = -Infinity;
    }
  }
  return out;
}
