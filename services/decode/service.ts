/**
 * The decode service: receives encoded layers into its paged per-head block store, then
 * generates, batching every active sequence per step, and streams tokens to the gateway.
 * Every body it receives is parsed once against the contract (a bad one is a 400 and opens
 * nothing); every token event is signed with the request's key and published so that a
 * failure is logged, never thrown into the decode loop or a timer.
 *
 * Failure and overload: `open` reserves the request's blocks or refuses with `unavailable`
 * before anything else is spent on it; the hand-off must commit within the deadline the open
 * request carries (`Kvrelay-Timeout`); every request held here, from open to its last event,
 * gets a `heartbeat` on its token subject every `heartbeatMs`, and `probe` on the control
 * subject says whether it is still held.
 * @module
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { nuid } from "@nats-io/nats-core";
import type { Service } from "@nats-io/services";
import type { Model } from "../../shared/model/mod.ts";
import type { Config } from "../../shared/config/mod.ts";
import { KvrelayError } from "../../shared/errors.ts";
import { BundleReceiver, startService, toJsonBytes } from "../../shared/nats/mod.ts";
import type { TransferHandlers } from "../../shared/nats/transfer.ts";
import { parseBody, publishSafely } from "../../shared/nats/call.ts";
import { type Deadline, deadlineFromHeaders, timeLeft } from "../../shared/nats/deadline.ts";
import { H_MAC, signEvent } from "../../shared/nats/event_mac.ts";
import {
  CALLS,
  type ControlMessage,
  type ControlReply,
  type DecodeCommitReply,
  type DecodeOpenReply,
  type DecodeOpenRequest,
  SUBJECTS,
  type TokenEvent,
} from "../../shared/handoff/contract.ts";
import { BlockStore } from "../../shared/blockstore/mod.ts";
import { selectCodecBackend } from "../../shared/codec/webgpu/mod.ts";
import { createCudaFastCodec } from "../../shared/codec/cuda/mod.ts";
import { OutputPool } from "../../shared/codec/cuda/output_pool.ts";
import { pooledFrameDecoder } from "./cuda_frames.ts";
import { CodecPool } from "../../shared/pipeline/workers/codec_pool.ts";
import {
  bundleExpectation,
  type DecodedLayer,
  decodeLayerBundle,
  decodeLayerBundleWith,
  type FrameDecoder,
} from "../../shared/pipeline/decode_stage.ts";
import { DecodeEngine, type SequenceSink } from "../../shared/pipeline/decode_engine.ts";
import { decodeEvictionOf, headAppends } from "../../shared/pipeline/decode_eviction.ts";
import { withCanary } from "../../shared/pipeline/canary.ts";
import { Registry } from "prom-client";
import { metricsReport, registerDecodeGauges } from "../../shared/metrics/mod.ts";
import { context, type Span, trace } from "@opentelemetry/api";
import {
  attr,
  failSpan,
  getMetrics,
  getTracer,
  injectContext,
  withSpan,
} from "../../shared/telemetry/mod.ts";

// Distributive Omit, so each event variant keeps its own fields.
type Unsequenced<T> = T extends unknown ? Omit<T, "seq"> : never;

export interface DecodeService {
  service: Service;
  engine: DecodeEngine;
  store: BlockStore;
}

export async function startDecodeService(
  nc: NatsConnection,
  model: Model,
  config: Config,
): Promise<DecodeService> {
  const instance = nuid.next();
  const ingest = SUBJECTS.ingest("decode", instance);
  const control = SUBJECTS.control("decode", instance);
  const c = model.config;
  const store = new BlockStore({
    nLayers: c.nLayers,
    nKvHeads: c.nKvHeads,
    headDim: c.headDim,
    blockSize: config.kv.blockSize,
    maxBlocks: config.decodeMaxBlocks,
  });
  const engine = new DecodeEngine(model, store, { maxBatch: config.decodeMaxBatch });
  const receiver = new BundleReceiver({ maxBundleBytes: config.maxBundleBytes });
  // With KVRELAY_CODEC_DEVICE=webgpu a layer's frames decode together on the GPU (the values come
  // back to the host: the model runtime's device cannot share Deno's WebGPU buffers). Only then is
  // a device acquired: under `auto` the CPU's WebAssembly decoder is faster end to end.
  const backend = config.codecDevice === "webgpu" ? await selectCodecBackend("webgpu") : undefined;
  if (backend) console.error(`[decode] codec backend: ${backend.description}`);
  // KVRELAY_CODEC_DEVICE=cuda: a layer's fast frames decode together on CUDA, by DMA into
  // buffers of a pool (page-locked once each), held by the request until its layers are in the
  // block store
  const cuda = config.codecDevice === "cuda"
    ? createCudaFastCodec({ libPath: config.cudaLib, device: config.cudaDevice })
    : undefined;
  if (cuda) console.error(`[decode] fast codec on CUDA: ${cuda.device}`);
  const outputPool = cuda ? new OutputPool() : undefined;
  /** Pooled decode outputs each request holds. */
  const pooledOutputs = new Map<string, Float32Array[]>();
  const recycleOutputs = (requestId: string) => {
    for (const buf of pooledOutputs.get(requestId)?.splice(0) ?? []) outputPool!.give(buf);
    pooledOutputs.delete(requestId);
  };
  const fastGpu = cuda ?? backend?.gpu?.fast;
  // else, with KVRELAY_CODEC_THREADS > 1, a layer's frames decode on a pool of workers
  const pool = !fastGpu && config.codecThreads > 1 ? new CodecPool(config.codecThreads) : undefined;
  const onGpu: FrameDecoder | undefined = fastGpu
    ? (streams, limits) => fastGpu.decodeMany(streams, limits)
    : pool?.frameDecoder();
  const expect = bundleExpectation(c);

  /** The open `generate` span of each sequence, ended on done, error or cancel. */
  const generating = new Map<string, Span>();
  /** Every request held here, from open to its last event: its heartbeat and deadline. */
  const held = new Map<string, { beat: () => void; deadline: Deadline }>();
  /** The request is no longer held: no more heartbeats, and its reservation goes. */
  const release = (requestId: string) => {
    held.delete(requestId);
    engine.release(requestId);
    recycleOutputs(requestId);
  };
  const heartbeats = setInterval(() => {
    for (const [id, h] of held) {
      // Not generating past its deadline: its hand-off failed; nobody waits for it any more.
      if (!generating.has(id) && timeLeft(h.deadline) === 0) release(id);
      else h.beat();
    }
  }, config.heartbeatMs);
  Deno.unrefTimer(heartbeats);
  const metrics = getMetrics();

  const open = (req: DecodeOpenRequest, deadline: Deadline): DecodeOpenReply => {
    if (generating.has(req.requestId) || held.has(req.requestId)) {
      throw new KvrelayError("bad_request", `request ${req.requestId} is already open here`);
    }
    // A full instance refuses now, before prefill, compression and transfer are spent on it.
    const eviction = req.kv ? decodeEvictionOf(req.kv) : undefined;
    const kvTokens = req.kvTokens ?? 0;
    engine.reserve(
      req.requestId,
      engine.blocksForTokens(kvTokens, headAppends(kvTokens, req.sampling.maxTokens, eviction)),
    );
    let seq = 0;
    // Token events carry the trace context of the sequence's `generate` span once it exists.
    let streamCtx = context.active();
    // Called from the decode loop and from timers: it must not throw.
    const send = (ev: Unsequenced<TokenEvent> | TokenEvent) => {
      const body = toJsonBytes(ev);
      const headers = injectContext(undefined, streamCtx);
      headers.set(H_MAC, signEvent(req.tokenKey, req.tokenSubject, body));
      publishSafely(nc, req.tokenSubject, body, { headers });
    };
    const publish = (ev: Unsequenced<TokenEvent>) => send({ ...ev, seq: seq++ });
    held.set(req.requestId, { beat: () => send({ type: "heartbeat", seq }), deadline });
    const layers: DecodedLayer[] = [];
    let decodeKvMs = 0;
    const outputs: Float32Array[] = [];
    if (outputPool) pooledOutputs.set(req.requestId, outputs);
    const decodeFrames = cuda && outputPool ? pooledFrameDecoder(cuda, outputPool, outputs) : onGpu;
    const handlers: TransferHandlers = {
      onBundle: (b) =>
        withSpan("decode-kv", {
          [attr.REQUEST_ID]: req.requestId,
          [attr.STAGE]: "decode-kv",
          [attr.LAYER]: String(b.index),
          [attr.KV_BYTES_ENCODED]: b.bytes.length,
        }, async () => {
          const t0 = performance.now();
          const layer = decodeFrames
            ? await decodeLayerBundleWith(b.bytes, expect, decodeFrames)
            : decodeLayerBundle(b.bytes, expect);
          if (layer.requestId !== req.requestId || layer.layer !== b.index) {
            throw new KvrelayError(
              "corrupt_bundle",
              `bundle ${b.index} holds layer ${layer.layer} of ${layer.requestId}`,
            );
          }
          layers.push(layer);
          const ms = performance.now() - t0;
          decodeKvMs += ms;
          metrics.decodeDuration.record(ms / 1000, { [attr.LAYER]: String(b.index) });
        }),
      onCommit: (count, body): Promise<DecodeCommitReply> => {
        try {
          return Promise.resolve(commit(count, body));
        } catch (err) {
          release(req.requestId);
          throw err;
        }
      },
      onExpire: () => {
        release(req.requestId);
        publish({ type: "error", code: "timeout", message: "the KV hand-off did not complete in time" });
      },
    };
    const commit = (count: number, body: unknown): DecodeCommitReply => {
      const dc = CALLS.decodeCommit.request(body, CALLS.decodeCommit.name);
      // released meanwhile: its pooled outputs may already hold another request's values
      if (outputPool && pooledOutputs.get(req.requestId) !== outputs) {
        throw new KvrelayError("timeout", `request ${req.requestId} was released before its commit`);
      }
      if (dc.firstToken >= c.vocabSize || dc.nPos >= c.maxSeqLen) {
        throw new KvrelayError(
          "bad_request",
          `commit names token ${dc.firstToken} at ${dc.nPos} positions; the model has ${c.vocabSize} tokens, ${c.maxSeqLen} positions`,
        );
      }
      if (dc.requestId !== req.requestId || count !== c.nLayers || layers.length !== c.nLayers) {
        throw new KvrelayError(
          "corrupt_bundle",
          `commit of ${count} layers for a ${c.nLayers}-layer model`,
        );
      }
      const t0 = performance.now();
      const blocksBefore = store.stats().usedBlocks;
      // From add to done: the sequence's share of the batched decode loop.
      const gen = getTracer().startSpan("generate", {
        attributes: {
          [attr.REQUEST_ID]: req.requestId,
          [attr.MODEL]: c.name,
          [attr.STAGE]: "generate",
          [attr.INPUT_TOKENS]: dc.nPos,
        },
      });
      streamCtx = trace.setSpan(context.active(), gen);
      generating.set(req.requestId, gen);
      const endGenerate = (tokens: number, err?: unknown) => {
        if (generating.get(req.requestId) !== gen) return;
        generating.delete(req.requestId);
        gen.setAttribute(attr.OUTPUT_TOKENS, tokens);
        if (err !== undefined) failSpan(gen, err);
        gen.end();
      };
      let tokens = 0;
      // The accuracy canary samples requests that sent their prompt's ids (`canary.ts`).
      const canary = dc.promptIds !== undefined && Math.random() < config.canaryRate;
      let sink: SequenceSink = {
        onToken: (id, text, logprobs) => {
          tokens++;
          publish({ type: "token", id, text, ...(logprobs ? { logprobs } : {}) });
        },
        onDone: (finishReason, completionTokens, generateMs, kv) => {
          gen.setAttribute("gen_ai.response.finish_reasons", [finishReason]);
          endGenerate(completionTokens);
          release(req.requestId);
          publish({ type: "done", finishReason, completionTokens, generateMs, kv });
        },
        onError: (err) => {
          metrics.failures.add(1, { [attr.ERROR_TYPE]: err.code, [attr.STAGE]: "generate" });
          endGenerate(tokens, err);
          release(req.requestId);
          publish({ type: "error", code: err.code, message: err.message });
        },
      };
      if (canary) sink = withCanary(model, dc.promptIds!, sink);
      try {
        engine.add(
          req.requestId,
          layers,
          {
            token: dc.firstToken,
            nPos: dc.nPos,
            promptLastToken: dc.promptLastToken,
            promptIds: dc.promptIds,
            logprobs: dc.firstLogprobs,
          },
          req.sampling,
          sink,
          { eviction },
        );
      } catch (err) {
        endGenerate(tokens, err);
        throw err;
      }
      recycleOutputs(req.requestId); // the block store holds copies of the layers now
      decodeKvMs += performance.now() - t0;
      return { decodeKvMs, blocks: store.stats().usedBlocks - blocksBefore };
    };
    try {
      receiver.expect(req.requestId, handlers, Math.max(1, timeLeft(deadline)));
    } catch (err) {
      release(req.requestId);
      throw err;
    }
    return { ingest, control, instance };
  };

  const onControl = (msg: ControlMessage): ControlReply => {
    const wasHeld = held.has(msg.requestId);
    if (msg.op === "probe") return { cancelled: false, held: wasHeld };
    receiver.drop(msg.requestId);
    const cancelled = engine.cancel(msg.requestId);
    release(msg.requestId);
    const gen = generating.get(msg.requestId);
    if (gen) {
      generating.delete(msg.requestId);
      gen.setAttribute("kvrelay.cancelled", true);
      gen.end();
    }
    return { cancelled, held: wasHeld };
  };

  // Load gauges, read at each scrape and served to the gateway's GET /metrics in $SRV.STATS.
  const registry = new Registry();
  registerDecodeGauges(registry, instance, () => ({
    running: engine.activeCount,
    waiting: [...held.keys()].filter((id) => !generating.has(id)).length,
    store: store.stats(),
  }));
  const service = await startService(nc, {
    name: "decode",
    description: "decodes KV bundles into a paged block store and generates tokens",
    metadata: { instance, model: c.name },
    statsData: async () => ({
      ...store.stats(),
      active: engine.activeCount,
      held: held.size,
      unreservedBlocks: engine.unreservedBlocks,
      steps: engine.steps,
      ...await metricsReport(registry),
    }),
    endpoints: {
      open: {
        subject: SUBJECTS.decodeOpen,
        handler: (m) => {
          const deadline = deadlineFromHeaders(m.headers, config.requestTimeoutMs);
          const req = parseBody(CALLS.decodeOpen.request, m.data, CALLS.decodeOpen.name);
          return Promise.resolve(open(req, deadline));
        },
      },
      ingest: { subject: ingest, handler: receiver.handle, queue: "" },
      control: {
        subject: control,
        handler: (m) =>
          Promise.resolve(
            onControl(parseBody(CALLS.decodeControl.request, m.data, CALLS.decodeControl.name)),
          ),
        queue: "",
      },
    },
  });
  // the codec's GPU device goes with the service
  const stop = service.stop.bind(service);
  service.stop = (err?: Error) => {
    clearInterval(heartbeats);
    return stop(err).finally(() => (backend?.destroy(), pool?.close()));
  };
  return { service, engine, store };
}
