/**
 * The decode service: receives encoded layers into its paged per-head block store, then
 * generates, batching every active sequence per step, and streams tokens to the gateway.
 * @module
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { nuid } from "@nats-io/nats-core";
import type { Service } from "@nats-io/services";
import type { Model } from "../../shared/model/mod.ts";
import type { Config } from "../../shared/config/mod.ts";
import { KvrelayError } from "../../shared/errors.ts";
import { BundleReceiver, fromJsonBytes, startService, toJsonBytes } from "../../shared/nats/mod.ts";
import {
  type ControlMessage,
  type DecodeCommit,
  type DecodeCommitReply,
  type DecodeOpenReply,
  type DecodeOpenRequest,
  SUBJECTS,
  type TokenEvent,
} from "../../shared/handoff/contract.ts";
import { BlockStore } from "../../shared/blockstore/mod.ts";
import { type DecodedLayer, decodeLayerBundle } from "../../shared/pipeline/decode_stage.ts";
import { DecodeEngine } from "../../shared/pipeline/decode_engine.ts";

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
  const expect = {
    nLayers: c.nLayers,
    nKvHeads: c.nKvHeads,
    headDim: c.headDim,
    maxElements: c.maxSeqLen * c.nKvHeads * c.headDim,
  };

  const open = (req: DecodeOpenRequest): DecodeOpenReply => {
    let seq = 0;
    const publish = (ev: Unsequenced<TokenEvent>) =>
      nc.publish(req.tokenSubject, toJsonBytes({ ...ev, seq: seq++ }));
    const layers: DecodedLayer[] = [];
    let decodeKvMs = 0;
    receiver.expect(req.requestId, {
      onBundle: (b) => {
        const t0 = performance.now();
        const layer = decodeLayerBundle(b.bytes, expect);
        if (layer.requestId !== req.requestId || layer.layer !== b.index) {
          throw new KvrelayError(
            "corrupt_bundle",
            `bundle ${b.index} holds layer ${layer.layer} of ${layer.requestId}`,
          );
        }
        layers.push(layer);
        decodeKvMs += performance.now() - t0;
        return Promise.resolve();
      },
      onCommit: (count, body): Promise<DecodeCommitReply> => {
        const dc = body as DecodeCommit;
        if (dc.requestId !== req.requestId || count !== c.nLayers || layers.length !== c.nLayers) {
          throw new KvrelayError(
            "corrupt_bundle",
            `commit of ${count} layers for a ${c.nLayers}-layer model`,
          );
        }
        const t0 = performance.now();
        const blocksBefore = store.stats().usedBlocks;
        engine.add(req.requestId, layers, { token: dc.firstToken, nPos: dc.nPos }, req.sampling, {
          onToken: (id, text) => publish({ type: "token", id, text }),
          onDone: (finishReason, completionTokens, generateMs) =>
            publish({ type: "done", finishReason, completionTokens, generateMs }),
          onError: (err) => publish({ type: "error", code: err.code, message: err.message }),
        });
        decodeKvMs += performance.now() - t0;
        return Promise.resolve({ decodeKvMs, blocks: store.stats().usedBlocks - blocksBefore });
      },
      onExpire: () =>
        publish({ type: "error", code: "timeout", message: "the KV hand-off did not complete in time" }),
    }, config.requestTimeoutMs);
    return { ingest, control, instance };
  };

  const onControl = (msg: ControlMessage) => {
    if (msg?.op !== "cancel" || typeof msg.requestId !== "string") {
      throw new KvrelayError("bad_request", "unknown control message");
    }
    receiver.drop(msg.requestId);
    return { cancelled: engine.cancel(msg.requestId) };
  };

  const service = await startService(nc, {
    name: "decode",
    description: "decodes KV bundles into a paged block store and generates tokens",
    metadata: { instance, model: c.name },
    statsData: () => ({ ...store.stats(), active: engine.activeCount, steps: engine.steps }),
    endpoints: {
      open: { subject: SUBJECTS.decodeOpen, handler: (m) => Promise.resolve(open(fromJsonBytes(m.data))) },
      ingest: { subject: ingest, handler: receiver.handle, queue: "" },
      control: {
        subject: control,
        handler: (m) => Promise.resolve(onControl(fromJsonBytes(m.data))),
        queue: "",
      },
    },
  });
  return { service, engine, store };
}
