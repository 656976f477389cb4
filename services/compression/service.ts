/**
 * The compression service: takes a request's raw bundles from prefill, evicts and encodes
 * them, and sends the encoded layers to the decode instance the request names.
 * @module
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { nuid } from "@nats-io/nats-core";
import type { Service } from "@nats-io/services";
import type { Config } from "../../shared/config/mod.ts";
import {
  BundleReceiver,
  commitTransfer,
  fromJsonBytes,
  sendBundles,
  startService,
} from "../../shared/nats/mod.ts";
import {
  type CompressionCommitReply,
  type CompressionOpenReply,
  type CompressionOpenRequest,
  type DecodeCommit,
  type DecodeCommitReply,
  type PrefillCommit,
  SUBJECTS,
} from "../../shared/handoff/contract.ts";
import {
  type AsyncCompressionHooks,
  type CompressionHooks,
  CompressionJob,
  type FrameInput,
  type LayerEncoding,
} from "../../shared/pipeline/compress_stage.ts";
import { buildKvUsage } from "../../shared/pipeline/usage.ts";
import type { KvSettings } from "../../shared/handoff/contract.ts";
import { absoluteBound, inspect } from "../../shared/codec/mod.ts";
import { type CodecBackend, gpuBatchEncoder, selectCodecBackend } from "./codec_device.ts";
import { attr, getMetrics, withSpan } from "../../shared/telemetry/mod.ts";

const LOSSY_BOUNDED = new Set(["kvsort", "sz"]);
/** Codecs the WebGPU backend runs; the rest (zstd, raw, KIVI) stay on the CPU codec. */
const GPU_CODECS = new Set(["kvsort", "sz"]);

/**
 * Spans and metrics of `CompressionJob.finish()` / `finishAsync()`: one `evict` span, one
 * `encode` span per layer bundle (bytes raw/encoded, ratio, error bound, index share k,
 * kept fraction, codec device) with one `frame` event per K/V frame (head, role, bytes, ms).
 */
function tracingHooks(
  requestId: string,
  kv: KvSettings,
  device: string,
): { sync: CompressionHooks; async: AsyncCompressionHooks } {
  const m = getMetrics();
  const common = { [attr.REQUEST_ID]: requestId, [attr.CODEC_NAME]: kv.codec };
  let frames: { eb: number; k: number; events: [string, Record<string, number | string>][] } | undefined;
  const evict = <T>(run: () => T): T => withSpan("evict", { ...common, [attr.STAGE]: "evict" }, run);
  const encodeLayer = <R extends LayerEncoding | Promise<LayerEncoding>>(layer: number, run: () => R): R =>
    withSpan(
      "encode",
      { ...common, [attr.STAGE]: "encode", [attr.LAYER]: String(layer), "kvrelay.codec.device": device },
      (span) => {
        frames = { eb: 0, k: 0, events: [] };
        const t0 = performance.now();
        const done = (out: LayerEncoding): LayerEncoding => {
          const seconds = (performance.now() - t0) / 1000;
          const ratio = out.rawBytes / Math.max(1, out.bundle.length);
          const f = frames!;
          frames = undefined;
          span.setAttributes({
            [attr.KV_BYTES_RAW]: out.rawBytes,
            [attr.KV_BYTES_ENCODED]: out.bundle.length,
            [attr.KV_RATIO]: ratio,
            [attr.KV_KEPT_FRACTION]: out.keptFraction,
          });
          if (LOSSY_BOUNDED.has(kv.codec)) span.setAttribute(attr.CODEC_ERROR_BOUND, f.eb);
          if (kv.codec === "kvsort") span.setAttribute(attr.CODEC_INDEX_SHARE, f.k);
          for (const [name, a] of f.events) span.addEvent(name, a);
          const labels = { [attr.LAYER]: String(layer), [attr.CODEC_NAME]: kv.codec };
          m.encodeDuration.record(seconds, labels);
          m.ratio.record(ratio, labels);
          m.bytesRaw.add(out.rawBytes, labels);
          m.bytesWire.add(out.bundle.length, labels);
          return out;
        };
        const out = run();
        return (out instanceof Promise ? out.then(done) : done(out as LayerEncoding)) as R;
      },
    );
  const frameDone = (input: FrameInput, bytes: Uint8Array, ms: number): void => {
    if (!frames) return;
    let eb = 0;
    let k = 0;
    if (LOSSY_BOUNDED.has(kv.codec)) eb = absoluteBound(input.data, kv.errorBound, kv.errorMode);
    if (kv.codec === "kvsort") {
      // A number is what the codec used (capped by rows); "auto" is read back from the stream.
      k = typeof kv.indexShare === "number"
        ? Math.min(kv.indexShare, Math.max(1, input.rows))
        : inspect(bytes).k ?? 0;
    }
    frames.eb = Math.max(frames.eb, eb);
    frames.k = Math.max(frames.k, k);
    frames.events.push(["frame", {
      "kvrelay.head": input.head,
      "kvrelay.role": input.role,
      [attr.KV_TOKENS]: input.rows,
      [attr.KV_BYTES_ENCODED]: bytes.length,
      "kvrelay.duration_ms": Math.round(ms * 1000) / 1000,
      ...(LOSSY_BOUNDED.has(kv.codec) ? { [attr.CODEC_ERROR_BOUND]: eb } : {}),
      ...(kv.codec === "kvsort" ? { [attr.CODEC_INDEX_SHARE]: k } : {}),
    }]);
  };
  return {
    sync: {
      evict,
      encodeLayer,
      encodeFrame: (input, run) => {
        const t0 = performance.now();
        const bytes = run();
        frameDone(input, bytes, performance.now() - t0);
        return bytes;
      },
    },
    async: {
      evict,
      encodeLayer,
      encodeFrame: async (input, run) => {
        const t0 = performance.now();
        const bytes = await run();
        frameDone(input, bytes, performance.now() - t0);
        return bytes;
      },
    },
  };
}

export async function startCompressionService(nc: NatsConnection, config: Config): Promise<Service> {
  const instance = nuid.next();
  const ingest = SUBJECTS.ingest("compression", instance);
  const receiver = new BundleReceiver({ maxBundleBytes: config.maxBundleBytes });
  const timeoutMs = config.requestTimeoutMs;
  const backend: CodecBackend = await selectCodecBackend(config.codecDevice);
  console.error(`[compression] KVSort codec backend: ${backend.description}`);
  const encodeOnGpu = backend.kind === "webgpu" ? gpuBatchEncoder(backend) : undefined;

  const open = (data: Uint8Array): Promise<CompressionOpenReply> => {
    const req = fromJsonBytes<CompressionOpenRequest>(data);
    const job = new CompressionJob(req.requestId, req.kv);
    receiver.expect(req.transferId, {
      onBundle: (b) => Promise.resolve(job.accept(b.index, b.bytes)),
      onCommit: async (_count, body): Promise<CompressionCommitReply> => {
        const pc = body as PrefillCommit;
        const hooks = tracingHooks(
          req.requestId,
          req.kv,
          encodeOnGpu && GPU_CODECS.has(req.kv.codec) ? "webgpu" : "cpu",
        );
        // the CPU path stays synchronous and byte-for-byte what it was; the GPU path is async
        const out = encodeOnGpu && GPU_CODECS.has(req.kv.codec)
          ? await job.finishAsync(encodeOnGpu, hooks.async)
          : job.finish(hooks.sync);
        const t0 = performance.now();
        const transferAttrs = {
          [attr.REQUEST_ID]: req.requestId,
          [attr.STAGE]: "transfer",
          [attr.NATS_SUBJECT]: req.decodeIngest,
          [attr.KV_BYTES_ENCODED]: out.stats.wireBytes,
        };
        const dr = await withSpan("transfer", transferAttrs, async (span) => {
          const sent = await sendBundles(nc, req.decodeIngest, req.requestId, out.encoded, { timeoutMs });
          span.setAttribute(attr.CHUNK_COUNT, sent.chunks);
          const commit: DecodeCommit = { requestId: req.requestId, firstToken: pc.firstToken, nPos: pc.nPos };
          return await commitTransfer<DecodeCommitReply>(
            nc,
            req.decodeIngest,
            req.requestId,
            out.encoded.length,
            commit,
            { timeoutMs },
          );
        });
        const transfer = performance.now() - t0 - dr.decodeKvMs;
        const usage = buildKvUsage(req.kv, out.stats, {
          prefill: pc.prefillMs,
          transfer: Math.max(0, transfer),
          decode_kv: dr.decodeKvMs,
          generate: 0,
        });
        return { usage };
      },
    }, timeoutMs);
    return Promise.resolve({ ingest, instance });
  };

  const svc = await startService(nc, {
    name: "compression",
    description: "evicts and encodes KV caches between prefill and decode",
    metadata: { instance },
    statsData: () => ({ open_transfers: receiver.openTransfers }),
    endpoints: {
      open: { subject: SUBJECTS.compressionOpen, handler: (msg) => open(msg.data) },
      ingest: { subject: ingest, handler: receiver.handle, queue: "" },
    },
  });
  // the GPU device goes with the service
  const stop = svc.stop.bind(svc);
  svc.stop = (err?: Error) => stop(err).finally(() => backend.destroy());
  return svc;
}
