/**
 * One sequence's sampler: keeps what the penalties need (output token counts, the prompt's
 * tokens), processes each step's logits, picks a token and, when asked, reports its
 * log-probabilities. Prefill picks the first token with one, decode the rest with another
 * that `observe`s the first.
 *
 * @example
 * ```ts
 * import { TokenSampler } from "./token_sampler.ts";
 * const s = new TokenSampler({ temperature: 0, topP: 1, logprobs: 1 }, { endIds: [1] });
 * const step = s.pick(Float32Array.of(0, 1, 3));
 * step.id; // 2
 * step.logprobs?.top[0].id; // 2
 * ```
 * @module
 */
import { sampleToken } from "../sample.ts";
import { type LogitsParams, processLogits } from "./logits_processors.ts";
import { type StepLogprobs, tokenLogprobs } from "./logprobs.ts";

export interface SamplerParams extends LogitsParams {
  temperature: number;
  topP: number;
  /** Sample among the `topK` most likely tokens only (after penalties and bias); absent = all. */
  topK?: number;
  /** Drop tokens less likely (after temperature) than `minP` × the most likely one. */
  minP?: number;
  /** Alternatives to report with each token's log-probability; absent = no log-probabilities. */
  logprobs?: number;
  /** Tokens that end the sequence besides EOS (vLLM's `stop_token_ids`). */
  stopTokenIds?: number[];
  /** EOS does not end the sequence (vLLM's `ignore_eos`). */
  ignoreEos?: boolean;
}

export interface SamplerStep {
  id: number;
  logprobs?: StepLogprobs;
}

export class TokenSampler {
  readonly params: SamplerParams;
  #rng: () => number;
  #eos: number[];
  #ends: Set<number>;
  #counts = new Map<number, number>();
  #promptIds?: ReadonlySet<number>;
  #generated = 0;

  /**
   * `endIds`: the model's end-of-sequence tokens; `promptIds`: the prompt (used only by the
   * repetition penalty).
   */
  constructor(
    params: SamplerParams,
    opts: { endIds: number[]; rng?: () => number; promptIds?: Iterable<number> },
  ) {
    this.params = params;
    this.#rng = opts.rng ?? Math.random;
    this.#eos = opts.endIds;
    this.#ends = new Set([...(params.ignoreEos ? [] : opts.endIds), ...(params.stopTokenIds ?? [])]);
    if ((params.repetitionPenalty ?? 1) !== 1 && opts.promptIds) this.#promptIds = new Set(opts.promptIds);
  }

  /** Whether `id` ends the sequence (it is then not part of the output). */
  ends(id: number): boolean {
    return this.#ends.has(id);
  }

  /** Picks the next token from `logits` (vocab) and counts it as generated. */
  pick(logits: Float32Array): SamplerStep {
    const processed = processLogits(logits, {
      params: this.params,
      outputCounts: this.#counts,
      promptIds: this.#promptIds,
      generated: this.#generated,
      endIds: [...this.#eos, ...(this.params.stopTokenIds ?? [])],
    });
    const candidates = keepMinP(
      keepTopK(processed, this.params.topK),
      this.params.minP,
      this.params.temperature,
    );
    const id = sampleToken(candidates, {
      temperature: this.params.temperature,
      topP: this.params.topP,
      rng: this.#rng,
    });
    this.observe(id);
    const k = this.params.logprobs;
    return k === undefined ? { id } : { id, logprobs: tokenLogprobs(processed, id, k) };
  }

  /** Counts a token generated elsewhere (the first token, which prefill picked). */
  observe(id: number): void {
    this.#counts.set(id, (this.#counts.get(id) ?? 0) + 1);
    this.#generated++;
  }
}

/** `logits` with all but the `k` largest set to -Infinity (a copy); `logits` itself when k is absent or ≥ vocab. */
function keepTopK(logits: Float32Array, k: number | undefined): Float32Array {
  if (k === undefined || k >= logits.length) return logits;
  // The k-th largest value is the cut; ties at it are kept, as vLLM keeps them.
  const cut = Float32Array.from(logits).sort()[logits.length - k];
  return logits.map((x) => x >= cut ? x : -Infinity);
}

/**
 * `logits` without the tokens whose probability at `temperature` is below `minP` × the largest
 * (a copy); `logits` itself when there is nothing to drop.
 */
function keepMinP(logits: Float32Array, minP: number | undefined, temperature: number): Float32Array {
  if (!minP || temperature === 0) return logits;
  let max = -Infinity;
  for (const x of logits) if (x > max) max = x;
  // p_i / p_max = exp((l_i - l_max) / T) >= minP  ⇔  l_i >= l_max + T ln(minP)
  const cut = max + temperature * Math.log(minP);
  return logits.map((x) => x >= cut ? x : -Infinity);
}
