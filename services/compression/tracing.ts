/**
 * Spans and metrics of one request's compression: an `evict` span, and per layer an `encode`
 * span (bytes fp16/encoded, ratio, error bound, index share k, kept fraction, codec device)
 * carrying one `frame` event per K/V frame. Layers are reported once encoded, with the span
 * dated back to when their encoding began.
 * @module
 */
import { absoluteBound, CODEC_TRAITS, inspect } from "../../shared/codec/mod.ts";
import type { KvSettings } from "../../shared/handoff/contract.ts";
import type { CompressionHooks, FrameInput, LayerEncoding } from "../../shared/pipeline/compress_stage.ts";
import { attr, getMetrics, getTracer, withSpan } from "../../shared/telemetry/mod.ts";

export function compressionTracing(requestId: string, kv: KvSettings, device: string): CompressionHooks {
  const m = getMetrics();
  const bounded = CODEC_TRAITS[kv.codec].bounded;
  const sorts = CODEC_TRAITS[kv.codec].sortIndex;
  const common = { [attr.REQUEST_ID]: requestId, [attr.CODEC_NAME]: kv.codec };
  return {
    evict: <T>(run: () => T): T => withSpan("evict", { ...common, [attr.STAGE]: "evict" }, run),
    layerEncoded(layer: LayerEncoding, frames: FrameInput[]) {
      const end = performance.timeOrigin + performance.now();
      const span = getTracer().startSpan("encode", {
        startTime: end - layer.encodeMs,
        attributes: {
          ...common,
          [attr.STAGE]: "encode",
          [attr.LAYER]: String(layer.layer),
          "kvrelay.codec.device": device,
        },
      });
      const ratio = layer.rawBytes / Math.max(1, layer.bundle.length);
      span.setAttributes({
        [attr.KV_BYTES_RAW]: layer.rawBytes,
        [attr.KV_BYTES_ENCODED]: layer.bundle.length,
        [attr.KV_RATIO]: ratio,
        [attr.KV_KEPT_FRACTION]: layer.keptFraction,
      });
      let ebMax = 0, kMax = 0;
      // per-frame details cost a pass over the values: only for a span that is recorded
      if (span.isRecording()) {
        frames.forEach((f, i) => {
          const bytes = layer.frames[i];
          const eb = bounded ? absoluteBound(f.data, kv.errorBound, kv.errorMode) : 0;
          // the k the codec used is read back from the stream: the adaptive encoder may not sort
          const k = sorts ? inspect(bytes).k ?? 0 : 0;
          ebMax = Math.max(ebMax, eb);
          kMax = Math.max(kMax, k);
          span.addEvent("frame", {
            "kvrelay.head": f.head,
            "kvrelay.role": f.role,
            [attr.KV_TOKENS]: f.rows,
            [attr.KV_BYTES_ENCODED]: bytes.length,
            ...(bounded ? { [attr.CODEC_ERROR_BOUND]: eb } : {}),
            ...(sorts ? { [attr.CODEC_INDEX_SHARE]: k } : {}),
          });
        });
        if (bounded) span.setAttribute(attr.CODEC_ERROR_BOUND, ebMax);
        if (sorts) span.setAttribute(attr.CODEC_INDEX_SHARE, kMax);
      }
      span.end(end);
      const labels = { [attr.LAYER]: String(layer.layer), [attr.CODEC_NAME]: kv.codec };
      m.encodeDuration.record(layer.encodeMs / 1000, labels);
      m.ratio.record(ratio, labels);
      m.bytesRaw.add(layer.rawBytes, labels);
      m.bytesWire.add(layer.bundle.length, labels);
    },
  };
}
