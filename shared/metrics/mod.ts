/**
 * kvrelay's Prometheus metrics (prom-client): the hand-off histograms and byte counters a
 * prefill node records (`KvMetrics`), the load gauges of a decode instance
 * (`registerDecodeGauges`), and how services report them over NATS and the gateway merges
 * them (`metricsReport`, `ServiceReports`, `exposition`).
 *
 * @example
 * ```ts
 * import { Registry } from "prom-client";
 * const registry = new Registry();
 * const kv = new KvMetrics(registry);
 * // in startService: statsData: () => metricsReport(registry)
 * ```
 * @module
 */
export * from "./buckets.ts";
export { KvMetrics } from "./kv_metrics.ts";
export { type DecodeLoad, registerDecodeGauges } from "./decode_gauges.ts";
export {
  exposition,
  EXPOSITION_CONTENT_TYPE,
  metricsReport,
  ServiceReports,
  type ServiceReportsOptions,
} from "./report.ts";
