/**
 * The whole hand-off in one process, with the same bundles and stages the services use
 * (prefill → evict + encode → decode into a block store → generate), for the CLI and for
 * experiments. Only NATS is left out.
 * @module
 */
import type { Model } from "../model/mod.ts";
import { BlockStore } from "../blockstore/mod.ts";
import type { DecodeKvReport, KvSettings, KvUsage, SamplingParams } from "../handoff/contract.ts";
import { runPrefill } from "./prefill_stage.ts";
import { CompressionJob, cpuFrameEncoder } from "./compress_stage.ts";
import { bundleExpectation, decodeLayerBundle } from "./decode_stage.ts";
import { DecodeEngine, type SequenceSink } from "./decode_engine.ts";
import { decodeEvictionOf } from "./decode_eviction.ts";
import { withCanary } from "./canary.ts";
import { buildKvUsage } from "./usage.ts";
import { seededRng } from "../model/sampling/rng.ts";
import type { KvrelayError } from "../errors.ts";

export interface LocalRunResult {
  promptIds: number[];
  ids: number[];
  text: string;
  finishReason: "stop" | "length";
  kv: KvUsage;
}

export async function runLocal(
  model: Model,
  promptIds: number[],
  opts: {
    kv: KvSettings;
    sampling: SamplingParams;
    maxBlocks?: number;
    /** Also run the accuracy canary's shadow (`canary.ts`) and report it in `kv.canary`. */
    canary?: boolean;
    /** Steps between decode-time eviction plans (default `DEFAULT_EVICT_INTERVAL`). */
    evictInterval?: number;
    /** Called after every step with the store (tests watch its use). */
    onStep?: (store: BlockStore) => void;
    /** Called with each decode step's logits, a view valid during the call (tests compare them). */
    onLogits?: (logits: Float32Array) => void;
  },
): Promise<LocalRunResult> {
  const c = model.config;
  const requestId = "local";
  const rng = seededRng((opts.sampling.seed ?? 0x5eed) ^ 0x9e3779b9);
  const pre = await runPrefill(model, promptIds, { kv: opts.kv, sampling: opts.sampling, rng });

  const out = await new CompressionJob(requestId, opts.kv, pre.kv).run(cpuFrameEncoder, () => {});

  const t0 = performance.now();
  const expect = bundleExpectation(c);
  const layers = out.encoded.map((b) => decodeLayerBundle(b, expect));
  const blocksPerSeq = layers.reduce(
    (n, l) =>
      n +
      l.heads.reduce(
        (m, h) => m + Math.ceil((h.positions.length + opts.sampling.maxTokens + 1) / opts.kv.blockSize),
        0,
      ),
    0,
  );
  const store = new BlockStore({
    nLayers: c.nLayers,
    nKvHeads: c.nKvHeads,
    headDim: c.headDim,
    blockSize: opts.kv.blockSize,
    maxBlocks: opts.maxBlocks ?? blocksPerSeq,
  });
  const engine = new DecodeEngine(model, store, { maxBatch: 1 });
  const ids: number[] = [];
  let text = "";
  let finish: { reason: "stop" | "length"; ms: number; kv: DecodeKvReport } | undefined;
  let failure: KvrelayError | undefined;
  let decodeKvMs = 0;
  const ended = Promise.withResolvers<void>();
  let sink: SequenceSink = {
    onToken: (id, piece) => {
      ids.push(id);
      text += piece;
      opts.onStep?.(store);
    },
    onDone: (reason, _n, ms, kv) => {
      finish = { reason, ms, kv };
      ended.resolve();
    },
    onError: (err) => {
      failure = err;
      ended.resolve();
    },
    onLogits: opts.onLogits,
  };
  if (opts.canary) sink = withCanary(model, promptIds, sink);
  engine.add(
    requestId,
    layers,
    {
      token: pre.firstToken,
      nPos: pre.nPos,
      promptLastToken: promptIds.at(-1),
      promptIds,
      logprobs: pre.firstLogprobs,
    },
    opts.sampling,
    sink,
    { eviction: decodeEvictionOf(opts.kv, opts.evictInterval) },
  );
  decodeKvMs = performance.now() - t0;
  await engine.idle();
  await ended.promise;
  if (failure) throw failure;
  const kv = buildKvUsage(
    opts.kv,
    out.stats,
    {
      prefill: pre.prefillMs,
      transfer: 0,
      decode_kv: decodeKvMs,
      handoff: out.stats.evictMs + out.stats.encodeMs + decodeKvMs,
      generate: finish?.ms ?? 0,
    },
    "cpu",
    finish?.kv,
  );
  return { promptIds, ids, text, finishReason: finish?.reason ?? "stop", kv };
}
