/**
 * Prefill side of the hand-off: runs the prompt, samples the first token, and keeps the KV
 * cache and eviction metric in memory for the compression stage of the same process.
 * `startPrefill` hands the KV on while prefill still runs (a model built with layer groups
 * computes it group by group); `runPrefill` waits for the whole of it. Knows nothing about NATS.
 * @module
 */
import type { Model } from "../model/mod.ts";
import { type StepLogprobs, TokenSampler } from "../model/sampling/mod.ts";
import type { KvSettings, SamplingParams } from "../handoff/contract.ts";
import type { PrefillKv } from "./compress_stage.ts";

/** What prefill gives when it ends. */
export interface PrefillEnding {
  firstToken: number;
  /** The first token's log-probabilities, when `sampling.logprobs` asks for them. */
  firstLogprobs?: StepLogprobs;
  nPos: number;
  prefillMs: number;
  /** `performance.now()` when prefill ended. */
  endedAt: number;
}

export interface PrefillResult extends PrefillEnding {
  kv: PrefillKv;
}

export interface PrefillOptions {
  kv: KvSettings;
  sampling: SamplingParams;
  rng: () => number;
  /** Stops prefill between layer groups (the hand-off already failed). */
  signal?: AbortSignal;
}

/** A prefill under way. */
export interface StartedPrefill {
  /**
   * The KV, as soon as prefill has computed its first layer group: its `ready(l)` says when
   * layer l is final. Rejects if prefill fails before that.
   */
  kv: Promise<PrefillKv>;
  /** The first token, once prefill has run every layer. */
  ending: Promise<PrefillEnding>;
}

/** Starts prefill; the KV is handed out group by group while the rest computes. */
export function startPrefill(model: Model, promptIds: number[], opts: PrefillOptions): StartedPrefill {
  const c = model.config;
  let computed = 0; // layers [0, computed) are final
  let failure: unknown;
  const waiting: { layer: number; resolve: () => void; reject: (e: unknown) => void }[] = [];
  const ready = (layer: number) =>
    layer < computed
      ? Promise.resolve()
      : failure !== undefined
      ? Promise.reject(failure)
      : new Promise<void>((resolve, reject) => void waiting.push({ layer, resolve, reject }));
  let giveKv!: (kv: PrefillKv) => void;
  const kv = new Promise<PrefillKv>((resolve) => giveKv = resolve);

  const t0 = performance.now();
  const ending = model.prefill(promptIds, {
    observationWindow: opts.kv.observationWindow,
    signal: opts.signal,
    onLayers: (upTo, partial) => {
      if (computed === 0) {
        giveKv({
          nLayers: c.nLayers,
          nKvHeads: c.nKvHeads,
          nPos: promptIds.length,
          headDim: c.headDim,
          layers: partial.layers,
          metric: partial.metric,
          coefficients: model.kvPredictor,
          ready,
        });
      }
      computed = upTo;
      for (const w of waiting.splice(0)) {
        if (w.layer < computed) w.resolve();
        else waiting.push(w);
      }
    },
  }).then((out) => {
    const endedAt = performance.now();
    const tok = model.tokenizer;
    const first = new TokenSampler(opts.sampling, {
      endIds: [tok.eosId, tok.bosId],
      rng: opts.rng,
      promptIds,
    }).pick(out.logits);
    return {
      firstToken: first.id,
      firstLogprobs: first.logprobs,
      nPos: out.nPos,
      prefillMs: endedAt - t0,
      endedAt,
    };
  });
  // a prefill that fails before its first group fails the KV too
  const kvOut = Promise.race([kv, ending.then(() => kv)]);
  kvOut.catch(() => {}); // a caller that awaits only `ending` (runPrefill) must not leave it unhandled
  return {
    kv: kvOut,
    ending: ending.catch((err) => {
      failure = err;
      for (const w of waiting.splice(0)) w.reject(err);
      throw err;
    }),
  };
}

/** Runs the whole prompt, then hands out the KV. */
export async function runPrefill(
  model: Model,
  promptIds: number[],
  opts: PrefillOptions,
): Promise<PrefillResult> {
  const started = startPrefill(model, promptIds, opts);
  const end = await started.ending;
  return { ...end, kv: await started.kv };
}
