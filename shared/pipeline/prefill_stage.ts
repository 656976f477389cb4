/**
 * Prefill side of the hand-off: runs the prompt and turns the model's output into bundles
 * (the metric first, then one raw layer bundle per layer) plus the first sampled token.
 * Knows nothing about NATS.
 * @module
 */
import type { Model } from "../model/mod.ts";
import { sampleToken } from "../model/mod.ts";
import { writeMetric, writeRawLayer } from "../kvwire/mod.ts";
import type { KvSettings, SamplingParams } from "../handoff/contract.ts";

export interface PrefillResult {
  /** bundles[0] is the metric; bundles[1 + l] is layer l. */
  bundles: Uint8Array[];
  firstToken: number;
  nPos: number;
  prefillMs: number;
}

export async function runPrefill(
  model: Model,
  requestId: string,
  promptIds: number[],
  opts: { kv: KvSettings; sampling: SamplingParams; rng: () => number },
): Promise<PrefillResult> {
  const t0 = performance.now();
  const out = await model.prefill(promptIds, { observationWindow: opts.kv.observationWindow });
  const prefillMs = performance.now() - t0;
  const c = model.config;
  const shape = { requestId, nLayers: c.nLayers, nKvHeads: c.nKvHeads, nPos: out.nPos, headDim: c.headDim };
  const bundles = [writeMetric({ ...shape, metric: out.metric })];
  out.layers.forEach((l, layer) =>
    bundles.push(writeRawLayer({ ...shape, layer, keys: l.keys, values: l.values }))
  );
  const firstToken = sampleToken(out.logits, {
    temperature: opts.sampling.temperature,
    topP: opts.sampling.topP,
    rng: opts.rng,
  });
  return { bundles, firstToken, nPos: out.nPos, prefillMs };
}
