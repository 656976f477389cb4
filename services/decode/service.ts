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
 * subject says whether it is still held. Each request is one `DecodeRequest` (decode_request.ts);
 * this file holds what they share: the engine, the block store, the receiver and the timer.
 * @module
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { nuid } from "@nats-io/nats-core";
import type { Service } from "@nats-io/services";
import { Registry } from "prom-client";
import type { Model } from "../../shared/model/mod.ts";
import type { Config } from "../../shared/config/mod.ts";
import { KvrelayError } from "../../shared/errors.ts";
import { BundleReceiver, startService } from "../../shared/nats/mod.ts";
import { parseBody } from "../../shared/nats/call.ts";
import { type Deadline, deadlineFromHeaders, timeLeft } from "../../shared/nats/deadline.ts";
import {
  CALLS,
  type ControlMessage,
  type ControlReply,
  type DecodeOpenReply,
  type DecodeOpenRequest,
  SUBJECTS,
} from "../../shared/handoff/contract.ts";
import { BlockStore } from "../../shared/blockstore/mod.ts";
import { selectCodecBackend } from "../../shared/codec/webgpu/mod.ts";
import { createCudaFastCodec } from "../../shared/codec/cuda/mod.ts";
import { OutputPool } from "../../shared/codec/cuda/output_pool.ts";
import { CodecPool } from "../../shared/pipeline/workers/codec_pool.ts";
import { bundleExpectation } from "../../shared/pipeline/decode_stage.ts";
import { DecodeEngine } from "../../shared/pipeline/decode_engine.ts";
import { decodeEvictionOf, headAppends } from "../../shared/pipeline/decode_eviction.ts";
import { metricsReport, registerDecodeGauges } from "../../shared/metrics/mod.ts";
import { type DecodeInstance, DecodeRequest } from "./decode_request.ts";

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
  const fastGpu = cuda ?? backend?.gpu?.fast;
  // else, with KVRELAY_CODEC_THREADS > 1, a layer's frames decode on a pool of workers
  const pool = !fastGpu && config.codecThreads > 1 ? new CodecPool(config.codecThreads) : undefined;

  /** Every request held here, from open to its last event. */
  const requests = new Map<string, DecodeRequest>();
  const node: DecodeInstance = {
    nc,
    model,
    engine,
    store,
    expect: bundleExpectation(c),
    canaryRate: config.canaryRate,
    frameDecoder: fastGpu ? (streams, limits) => fastGpu.decodeMany(streams, limits) : pool?.frameDecoder(),
    cuda: cuda ? { codec: cuda, pool: new OutputPool() } : undefined,
    forget: (requestId) => requests.delete(requestId),
  };
  const heartbeats = setInterval(() => {
    for (const r of requests.values()) {
      // Not generating past its deadline: its hand-off failed; nobody waits for it any more.
      if (!r.generating && timeLeft(r.deadline) === 0) r.release();
      else r.beat();
    }
  }, config.heartbeatMs);
  Deno.unrefTimer(heartbeats);

  const open = (req: DecodeOpenRequest, deadline: Deadline): DecodeOpenReply => {
    if (requests.has(req.requestId)) {
      throw new KvrelayError("bad_request", `request ${req.requestId} is already open here`);
    }
    // A full instance refuses now, before prefill, compression and transfer are spent on it.
    const eviction = req.kv ? decodeEvictionOf(req.kv) : undefined;
    const kvTokens = req.kvTokens ?? 0;
    engine.reserve(
      req.requestId,
      engine.blocksForTokens(kvTokens, headAppends(kvTokens, req.sampling.maxTokens, eviction)),
    );
    const r = new DecodeRequest(node, req, deadline, eviction);
    requests.set(r.id, r);
    try {
      receiver.expect(r.id, r.handlers(), Math.max(1, timeLeft(deadline)));
    } catch (err) {
      r.release();
      throw err;
    }
    return { ingest, control, instance };
  };

  const onControl = (msg: ControlMessage): ControlReply => {
    const r = requests.get(msg.requestId);
    if (msg.op === "probe") return { cancelled: false, held: r !== undefined };
    receiver.drop(msg.requestId);
    const cancelled = engine.cancel(msg.requestId);
    r?.cancel();
    r?.release();
    return { cancelled, held: r !== undefined };
  };

  // Load gauges, read at each scrape and served to the gateway's GET /metrics in $SRV.STATS.
  const registry = new Registry();
  registerDecodeGauges(registry, instance, () => ({
    running: engine.activeCount,
    waiting: [...requests.values()].filter((r) => !r.generating).length,
    store: store.stats(),
  }));
  const service = await startService(nc, {
    name: "decode",
    description: "decodes KV bundles into a paged block store and generates tokens",
    metadata: { instance, model: c.name },
    statsData: async () => ({
      ...store.stats(),
      active: engine.activeCount,
      held: requests.size,
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
