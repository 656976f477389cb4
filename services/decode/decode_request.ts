/**
 * One request on a decode instance, as one object, from `open` to its last event: it takes the
 * request's encoded layers as they arrive, commits them into the block store when the hand-off
 * says all are there, and then streams the tokens the decode loop generates for it, signed with
 * the request's key. While held it answers the instance's heartbeat timer; `release()` lets go of
 * its blocks, pooled buffers and place on the instance, once, whatever ended it.
 * @module
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { type Context, context, type Span, trace } from "@opentelemetry/api";
import type { Model } from "../../shared/model/mod.ts";
import { KvrelayError } from "../../shared/errors.ts";
import { toJsonBytes } from "../../shared/nats/mod.ts";
import type { TransferHandlers } from "../../shared/nats/transfer.ts";
import { publishSafely } from "../../shared/nats/call.ts";
import type { Deadline } from "../../shared/nats/deadline.ts";
import { H_MAC, signEvent } from "../../shared/nats/event_mac.ts";
import {
  CALLS,
  type DecodeCommitReply,
  type DecodeOpenRequest,
  type TokenEvent,
} from "../../shared/handoff/contract.ts";
import type { BlockStore } from "../../shared/blockstore/mod.ts";
import type { CudaFastCodec } from "../../shared/codec/cuda/mod.ts";
import type { OutputPool } from "../../shared/codec/cuda/output_pool.ts";
import { pooledFrameDecoder } from "./cuda_frames.ts";
import {
  type BundleExpectation,
  type DecodedLayer,
  decodeLayerBundle,
  decodeLayerBundleWith,
  type FrameDecoder,
} from "../../shared/pipeline/decode_stage.ts";
import type { DecodeEngine, SequenceSink } from "../../shared/pipeline/decode_engine.ts";
import type { DecodeEvictionSettings } from "../../shared/pipeline/decode_eviction.ts";
import { withCanary } from "../../shared/pipeline/canary.ts";
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

/** What every request of one decode instance shares. */
export interface DecodeInstance {
  nc: NatsConnection;
  model: Model;
  engine: DecodeEngine;
  store: BlockStore;
  expect: BundleExpectation;
  /** Share of requests the accuracy canary samples (KVRELAY_CANARY_RATE). */
  canaryRate: number;
  /** A layer's frames decoded together (GPU or worker pool); undefined: one by one on this thread. */
  frameDecoder?: FrameDecoder;
  /** With the fast codec on CUDA: layers decode into buffers of this pool, held until the commit. */
  cuda?: { codec: CudaFastCodec; pool: OutputPool };
  /** The instance forgets the request (called once, by `release`). */
  forget(requestId: string): void;
}

export class DecodeRequest {
  readonly id: string;
  readonly deadline: Deadline;
  readonly #node: DecodeInstance;
  readonly #req: DecodeOpenRequest;
  readonly #eviction?: DecodeEvictionSettings;
  #seq = 0;
  /** Token events carry the trace context of the sequence's `generate` span once it exists. */
  #streamCtx: Context = context.active();
  readonly #layers: DecodedLayer[] = [];
  #decodeKvMs = 0;
  /** Pooled buffers the decoded layers live in until the block store has copied them. */
  readonly #outputs: Float32Array[] = [];
  readonly #decodeFrames?: FrameDecoder;
  /** The open `generate` span, from the commit to done, error or cancel. */
  #generate?: Span;
  #tokens = 0;
  #released = false;

  constructor(
    node: DecodeInstance,
    req: DecodeOpenRequest,
    deadline: Deadline,
    eviction: DecodeEvictionSettings | undefined,
  ) {
    this.#node = node;
    this.#req = req;
    this.id = req.requestId;
    this.deadline = deadline;
    this.#eviction = eviction;
    this.#decodeFrames = node.cuda
      ? pooledFrameDecoder(node.cuda.codec, node.cuda.pool, this.#outputs)
      : node.frameDecoder;
  }

  /** Committed and generating (its `generate` span is open). */
  get generating(): boolean {
    return this.#generate !== undefined;
  }

  /** What the bundle receiver calls for this request's bundles, commit and expiry. */
  handlers(): TransferHandlers {
    return {
      onBundle: (b) => this.#decodeBundle(b.index, b.bytes),
      onCommit: (count, body): Promise<DecodeCommitReply> => {
        try {
          return Promise.resolve(this.#commit(count, body));
        } catch (err) {
          this.release();
          throw err;
        }
      },
      onExpire: () => {
        this.release();
        this.#publish({
          type: "error",
          code: "timeout",
          message: "the KV hand-off did not complete in time",
        });
      },
    };
  }

  /** The heartbeat on the token subject, so the gateway knows the request is still held. */
  beat(): void {
    this.#send({ type: "heartbeat", seq: this.#seq });
  }

  /** The client went away: the `generate` span, if open, ends as cancelled. */
  cancel(): void {
    const span = this.#generate;
    if (!span) return;
    this.#generate = undefined;
    span.setAttribute("kvrelay.cancelled", true);
    span.end();
  }

  /** Lets go of the request's reservation, pooled buffers and place on the instance; idempotent. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#node.engine.release(this.id);
    this.#recycleOutputs();
    this.#node.forget(this.id);
  }

  // Called from the decode loop and from timers: it must not throw.
  #send(ev: Unsequenced<TokenEvent> | TokenEvent): void {
    const body = toJsonBytes(ev);
    const headers = injectContext(undefined, this.#streamCtx);
    headers.set(H_MAC, signEvent(this.#req.tokenKey, this.#req.tokenSubject, body));
    publishSafely(this.#node.nc, this.#req.tokenSubject, body, { headers });
  }

  #publish(ev: Unsequenced<TokenEvent>): void {
    this.#send({ ...ev, seq: this.#seq++ });
  }

  #recycleOutputs(): void {
    const pool = this.#node.cuda?.pool;
    for (const buf of this.#outputs.splice(0)) pool?.give(buf);
  }

  #decodeBundle(index: number, bytes: Uint8Array): Promise<void> {
    return withSpan("decode-kv", {
      [attr.REQUEST_ID]: this.id,
      [attr.STAGE]: "decode-kv",
      [attr.LAYER]: String(index),
      [attr.KV_BYTES_ENCODED]: bytes.length,
    }, async () => {
      const t0 = performance.now();
      const { expect } = this.#node;
      const layer = this.#decodeFrames
        ? await decodeLayerBundleWith(bytes, expect, this.#decodeFrames)
        : decodeLayerBundle(bytes, expect);
      if (layer.requestId !== this.id || layer.layer !== index) {
        throw new KvrelayError(
          "corrupt_bundle",
          `bundle ${index} holds layer ${layer.layer} of ${layer.requestId}`,
        );
      }
      this.#layers.push(layer);
      const ms = performance.now() - t0;
      this.#decodeKvMs += ms;
      getMetrics().decodeDuration.record(ms / 1000, { [attr.LAYER]: String(index) });
    });
  }

  #commit(count: number, body: unknown): DecodeCommitReply {
    const { model, engine, store } = this.#node;
    const c = model.config;
    const dc = CALLS.decodeCommit.request(body, CALLS.decodeCommit.name);
    // released meanwhile (expired, cancelled): its pooled outputs may already hold another request's values
    if (this.#released) {
      throw new KvrelayError("timeout", `request ${this.id} was released before its commit`);
    }
    if (dc.firstToken >= c.vocabSize || dc.nPos >= c.maxSeqLen) {
      throw new KvrelayError(
        "bad_request",
        `commit names token ${dc.firstToken} at ${dc.nPos} positions; the model has ${c.vocabSize} tokens, ${c.maxSeqLen} positions`,
      );
    }
    if (dc.requestId !== this.id || count !== c.nLayers || this.#layers.length !== c.nLayers) {
      throw new KvrelayError("corrupt_bundle", `commit of ${count} layers for a ${c.nLayers}-layer model`);
    }
    const t0 = performance.now();
    const blocksBefore = store.stats().usedBlocks;
    // From add to done: the sequence's share of the batched decode loop.
    const span = getTracer().startSpan("generate", {
      attributes: {
        [attr.REQUEST_ID]: this.id,
        [attr.MODEL]: c.name,
        [attr.STAGE]: "generate",
        [attr.INPUT_TOKENS]: dc.nPos,
      },
    });
    this.#streamCtx = trace.setSpan(context.active(), span);
    this.#generate = span;
    // The accuracy canary samples requests that sent their prompt's ids (`canary.ts`).
    const canary = dc.promptIds !== undefined && Math.random() < this.#node.canaryRate;
    const sink = canary ? withCanary(model, dc.promptIds!, this.#sink()) : this.#sink();
    try {
      engine.add(
        this.id,
        this.#layers,
        {
          token: dc.firstToken,
          nPos: dc.nPos,
          promptLastToken: dc.promptLastToken,
          promptIds: dc.promptIds,
          logprobs: dc.firstLogprobs,
        },
        this.#req.sampling,
        sink,
        { eviction: this.#eviction },
      );
    } catch (err) {
      this.#endGenerate(this.#tokens, err);
      throw err;
    }
    this.#recycleOutputs(); // the block store holds copies of the layers now
    this.#decodeKvMs += performance.now() - t0;
    return { decodeKvMs: this.#decodeKvMs, blocks: store.stats().usedBlocks - blocksBefore };
  }

  /** Where the decode loop sends this sequence's tokens, and how it ends. */
  #sink(): SequenceSink {
    return {
      onToken: (id, text, logprobs) => {
        this.#tokens++;
        this.#publish({ type: "token", id, text, ...(logprobs ? { logprobs } : {}) });
      },
      onDone: (finishReason, completionTokens, generateMs, kv) => {
        this.#generate?.setAttribute("gen_ai.response.finish_reasons", [finishReason]);
        this.#endGenerate(completionTokens);
        this.release();
        this.#publish({ type: "done", finishReason, completionTokens, generateMs, kv });
      },
      onError: (err) => {
        getMetrics().failures.add(1, { [attr.ERROR_TYPE]: err.code, [attr.STAGE]: "generate" });
        this.#endGenerate(this.#tokens, err);
        this.release();
        this.#publish({ type: "error", code: err.code, message: err.message });
      },
    };
  }

  #endGenerate(tokens: number, err?: unknown): void {
    const span = this.#generate;
    if (!span) return;
    this.#generate = undefined;
    span.setAttribute(attr.OUTPUT_TOKENS, tokens);
    if (err !== undefined) failSpan(span, err);
    span.end();
  }
}
