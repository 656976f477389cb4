/**
 * kvrelay's metric instruments, created once from the global meter provider (Deno's under
 * `OTEL_DENO=true`, exported to `OTEL_EXPORTER_OTLP_ENDPOINT`/v1/metrics; no-ops
 * otherwise). Durations are in seconds, as the OpenTelemetry conventions ask; record with
 * attributes from `attributes.ts` (`kvrelay.layer`, `gen_ai.request.model`, `error.type`)
 * and keep their values few (a layer bundle, never a request id).
 *
 * | Field             | Instrument                               | Kind      | Unit  |
 * | ----------------- | ---------------------------------------- | --------- | ----- |
 * | `encodeDuration`  | `kvrelay.codec.encode.duration`          | histogram | s     |
 * | `decodeDuration`  | `kvrelay.codec.decode.duration`          | histogram | s     |
 * | `ratio`           | `kvrelay.kv.ratio`                       | histogram | 1     |
 * | `ttft`            | `gen_ai.server.time_to_first_token`      | histogram | s     |
 * | `tpot`            | `gen_ai.server.time_per_output_token`    | histogram | s     |
 * | `requests`        | `kvrelay.requests`                       | counter   | {request} |
 * | `bytesRaw`        | `kvrelay.kv.bytes_raw`                   | counter   | By    |
 * | `bytesWire`       | `kvrelay.kv.bytes_wire`                  | counter   | By    |
 * | `failures`        | `kvrelay.failures`                       | counter   | {failure} |
 * @module
 */
import { type Counter, type Histogram, metrics } from "@opentelemetry/api";

/** Meter name, the same as the tracer's. */
export const METER_NAME = "kvrelay";

/** The instruments; see the module table. */
export interface KvrelayMetrics {
  encodeDuration: Histogram;
  decodeDuration: Histogram;
  ratio: Histogram;
  ttft: Histogram;
  tpot: Histogram;
  requests: Counter;
  bytesRaw: Counter;
  bytesWire: Counter;
  failures: Counter;
}

const CODEC_BUCKETS_S = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
const RATIO_BUCKETS = [1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64];
const TTFT_BUCKETS_S = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const TPOT_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

let cached: KvrelayMetrics | undefined;

/**
 * The process's instruments, created on first call (after Deno has registered its meter
 * provider).
 *
 * @example
 * ```ts
 * const m = getMetrics();
 * const t0 = performance.now();
 * const out = encode(kv);
 * m.encodeDuration.record((performance.now() - t0) / 1000, { "kvrelay.layer": "0-3" });
 * m.ratio.record(kv.byteLength / out.byteLength, { "kvrelay.layer": "0-3" });
 * m.failures.add(1, { "error.type": "corrupt_bundle" });
 * ```
 */
export function getMetrics(): KvrelayMetrics {
  if (cached) return cached;
  const meter = metrics.getMeter(METER_NAME);
  const histogram = (name: string, description: string, unit: string, buckets: number[]) =>
    meter.createHistogram(name, { description, unit, advice: { explicitBucketBoundaries: buckets } });
  cached = {
    encodeDuration: histogram(
      "kvrelay.codec.encode.duration",
      "Time to encode one KV layer bundle",
      "s",
      CODEC_BUCKETS_S,
    ),
    decodeDuration: histogram(
      "kvrelay.codec.decode.duration",
      "Time to decode one KV layer bundle",
      "s",
      CODEC_BUCKETS_S,
    ),
    ratio: histogram(
      "kvrelay.kv.ratio",
      "Compression ratio raw/encoded of one KV bundle",
      "1",
      RATIO_BUCKETS,
    ),
    ttft: histogram("gen_ai.server.time_to_first_token", "Time to first token", "s", TTFT_BUCKETS_S),
    tpot: histogram(
      "gen_ai.server.time_per_output_token",
      "Time per output token after the first",
      "s",
      TPOT_BUCKETS_S,
    ),
    requests: meter.createCounter("kvrelay.requests", { description: "Requests handled", unit: "{request}" }),
    bytesRaw: meter.createCounter("kvrelay.kv.bytes_raw", {
      description: "KV bytes before compression",
      unit: "By",
    }),
    bytesWire: meter.createCounter("kvrelay.kv.bytes_wire", {
      description: "KV bytes sent on the wire",
      unit: "By",
    }),
    failures: meter.createCounter("kvrelay.failures", {
      description: "Failures, by error.type",
      unit: "{failure}",
    }),
  };
  return cached;
}
