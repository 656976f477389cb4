/**
 * Sampling beyond temperature and top-p: penalties, logit bias, `min_tokens`, ending tokens
 * and log-probabilities, per sequence.
 * @module
 */
export { type LogitsParams, processLogits } from "./logits_processors.ts";
export { MAX_TOP_LOGPROBS, MIN_LOGPROB, type StepLogprobs, tokenLogprobs } from "./logprobs.ts";
export { argmax, klFromLogits, logNormalizer, logSoftmax } from "./distribution.ts";
export { seededRng } from "./rng.ts";
export { type SamplerParams, type SamplerStep, TokenSampler } from "./token_sampler.ts";
