/**
 * Prefill side of the hand-off: runs the prompt, samples the first token, and keeps the KV
 * cache and eviction metric in memory for the compression stage of the same process.
 * Knows nothing about NATS.
 * @module
 */
import type { Model } from "../model/mod.ts";
import { sampleToken } from "../model/mod.ts";
import type { KvSettings, SamplingParams } from "../handoff/contract.ts";
import type { PrefillKv } from "./compress_stage.ts";

export interface PrefillResult {
  kv: PrefillKv;
  firstToken: number;
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
  const firstToken = sampleToken(out.logits, {
    temperature: opts.sampling.temperature,
    topP: opts.sampling.topP,
    rng: opts.rng,
  });
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
    firstToken,
    nPos: out.nPos,
    prefillMs,
  };
}
