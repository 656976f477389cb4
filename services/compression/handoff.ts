/**
 * One request's hand-off from the prefill node to decode, as one object: it evicts and encodes
 * the prefill output layer by layer, sends each layer's bundle to the decode instance the
 * request names as soon as it is encoded (across the modelled link when one is set), and
 * commits once every bundle is acknowledged. When prefill runs in layer groups, the hand-off
 * starts with the first group and each layer waits until prefill has computed it.
 * `usage.kv.ms.handoff` is the time from the end of prefill to decode's reply that the KV is in
 * its block store: what the hand-off adds to the time to first token.
 * @module
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { commitTransfer, type LinkModel, sendBundles, type SendStats } from "../../shared/nats/mod.ts";
import {
  CALLS,
  type DecodeCommit,
  type DecodeCommitReply,
  type KvSettings,
  type KvUsage,
} from "../../shared/handoff/contract.ts";
import {
  CompressionJob,
  type FrameEncoder,
  type LayerEncoding,
  type PrefillKv,
} from "../../shared/pipeline/compress_stage.ts";
import { buildKvUsage } from "../../shared/pipeline/usage.ts";
import type { PrefillEnding } from "../../shared/pipeline/prefill_stage.ts";
import { context, type Span, trace } from "@opentelemetry/api";
import { attr, failSpan, getTracer, withSpan } from "../../shared/telemetry/mod.ts";
import { compressionTracing } from "./tracing.ts";

/**
 * What prefill knows only when it ends, which the commit carries (`endedAt`:
 * `usage.kv.ms.handoff` counts from it).
 */
export type PrefillEnd = Omit<PrefillEnding, "nPos">;

/** What the prefill side knows when it hands a request's KV over. */
export interface HandOffRequest {
  requestId: string;
  kv: KvSettings;
  /** Decode's ingest subject for this request (from `DecodeOpenReply`). */
  decodeIngest: string;
  /**
   * Prefill's end: a promise while prefill still runs in layer groups (the KV's `ready` says
   * when each layer is final), so layers go out before the last group is computed.
   */
  prefill: PrefillEnd | Promise<PrefillEnd>;
  /** The prompt's last token, for the text of the first generated one. */
  promptLastToken?: number;
  /** The prompt's ids: decode's repetition penalty and its accuracy canary (which re-prefills a sampled request). */
  promptIds?: number[];
  /** Time left for the whole hand-off, in ms. */
  timeoutMs: number;
}

/** How the node hands KV over: its encoder, link and pipelining. */
export interface HandOffDeps {
  nc: NatsConnection;
  encoder: FrameEncoder;
  link?: LinkModel;
  pipeline: boolean;
}

export class HandOff {
  readonly #deps: HandOffDeps;
  readonly #req: HandOffRequest;
  readonly #kv: PrefillKv;
  #sends: Promise<SendStats>[] = [];
  #firstSend = 0;
  /** When the hand-off started: `req.timeoutMs` counts from here. */
  #t0 = 0;
  /** From the first bundle handed to the link to decode's reply to the commit. */
  #transfer?: Span;

  constructor(deps: HandOffDeps, req: HandOffRequest, prefill: PrefillKv) {
    this.#deps = deps;
    this.#req = req;
    this.#kv = prefill;
  }

  /** Runs the hand-off; resolves with `usage.kv` once decode holds the KV. */
  async run(): Promise<KvUsage> {
    const { encoder, pipeline } = this.#deps;
    const req = this.#req;
    this.#t0 = performance.now();
    const job = new CompressionJob(req.requestId, req.kv, this.#kv);
    const hooks = compressionTracing(req.requestId, req.kv, encoder.device);
    const done = await withSpan("handoff", {
      [attr.REQUEST_ID]: req.requestId,
      [attr.STAGE]: "handoff",
      [attr.CODEC_NAME]: req.kv.codec,
    }, async () => {
      let out, sent, end;
      try {
        out = await job.run(encoder, (layer) => this.#send(layer), { hooks, pipeline });
        sent = await Promise.all(this.#sends);
        end = await req.prefill;
      } catch (err) {
        // bundles may already be on their way: the transfer span they opened ends with the failure
        if (this.#transfer) failSpan(this.#transfer, err), this.#transfer.end();
        throw err;
      }
      const span = this.#transfer!;
      span.setAttribute(attr.KV_BYTES_ENCODED, out.stats.wireBytes);
      span.setAttribute(attr.CHUNK_COUNT, sent.reduce((n, s) => n + s.chunks, 0));
      const commit: DecodeCommit = {
        requestId: req.requestId,
        firstToken: end.firstToken,
        nPos: this.#kv.nPos,
        promptLastToken: req.promptLastToken,
        promptIds: req.promptIds,
        ...(end.firstLogprobs ? { firstLogprobs: end.firstLogprobs } : {}),
      };
      try {
        const decoded = await context.with(
          trace.setSpan(context.active(), span),
          () =>
            commitTransfer<DecodeCommitReply>(
              this.#deps.nc,
              req.decodeIngest,
              req.requestId,
              out.encoded.length,
              commit,
              { timeoutMs: this.#timeLeft(), link: this.#deps.link },
            ),
        );
        return { out, end, decoded: CALLS.decodeCommit.reply(decoded, "decode.commit reply") };
      } finally {
        span.end();
      }
    });
    const { out, end, decoded } = done;
    const handoff = performance.now() - Math.max(this.#t0, end.endedAt);
    return buildKvUsage(req.kv, out.stats, {
      prefill: end.prefillMs,
      // from the first bundle handed to the link (or prefill's end, when bundles left during prefill)
      // to the last acknowledged, less decode's own time
      transfer: Math.max(0, performance.now() - Math.max(this.#firstSend, end.endedAt) - decoded.decodeKvMs),
      decode_kv: decoded.decodeKvMs,
      handoff,
      generate: 0,
    }, encoder.device);
  }

  /** Starts sending one layer's bundle; the bundle index is its layer. */
  #send(layer: LayerEncoding): void {
    if (!this.#transfer) {
      this.#firstSend = performance.now();
      this.#transfer = getTracer().startSpan("transfer", {
        attributes: {
          [attr.REQUEST_ID]: this.#req.requestId,
          [attr.STAGE]: "transfer",
          [attr.NATS_SUBJECT]: this.#req.decodeIngest,
        },
      });
    }
    // the chunks carry the transfer span's context, so decode's spans land under it
    const p = context.with(
      trace.setSpan(context.active(), this.#transfer),
      () =>
        sendBundles(this.#deps.nc, this.#req.decodeIngest, this.#req.requestId, [layer.bundle], {
          // what is left of the request's time: a layer sent late (prefill in groups) gets no more
          timeoutMs: this.#timeLeft(),
          firstIndex: layer.layer,
          link: this.#deps.link,
        }),
    );
    p.catch(() => {}); // awaited in run(); a failure there fails the request
    this.#sends.push(p);
  }

  /** What is left of the request's time, counted from the hand-off's start. */
  #timeLeft(): number {
    return Math.max(1, this.#req.timeoutMs - (performance.now() - this.#t0));
  }
}
