/**
 * Prefill side of the hand-off: runs the prompt, samples the first token, and keeps the KV
 * cache and eviction metric in memory for the compression stage of the same process.
 * Knows nothing about NATS.
 * @module
 */
import type { Model } from "../model/mod.ts";
import { type StepLogprobs, TokenSampler } from "../model/sampling/mod.ts";
import type { KvSettings, SamplingParams } from "../handoff/contract.ts";
import type { PrefillKv } from "./compress_stage.ts";

export interface PrefillResult {
  kv: PrefillKv;
  firstToken: number;
  /** The first token's log-probabilities, when `sampling.logprobs` asks for them. */
  firstLogprobs?: StepLogprobs;
  nPos: number;
  prefillMs: number;
}

export async function runPrefill(
  model: Model,
  promptIds: number[],
  opts: { kv: KvSettings; sampling: SamplingParams; rng: () => number },
): Promise<PrefillResult> {
  const t0 = performance.now();
  const out = await model.prefill(promptIds, { observationWindow: opts.kv.observationWindow });
  const prefillMs = performance.now() - t0;
  const c = model.config;
  const tok = model.tokenizer;
  const first = new TokenSampler(opts.sampling, {
    endIds: [tok.eosId, tok.bosId],
    rng: opts.rng,
    promptIds,
  }).pick(out.logits);
  return {
    kv: {
      nLayers: c.nLayers,
      nKvHeads: c.nKvHeads,
      nPos: out.nPos,
      headDim: c.headDim,
      layers: out.layers,
      metric: out.metric,
      coefficients: model.kvPredictor,
    },
    firstToken: first.id,
    firstLogprobs: first.logprobs,
    nPos: out.nPos,
    prefillMs,
  };
}
