/**
 * Metrics across services, over NATS: each service keeps a prom-client `Registry` and serves
 * it in its `$SRV.STATS` data (`metricsReport`); the gateway asks every instance
 * (`ServiceReports.collect`) and merges their metrics with its own into one Prometheus text
 * (`exposition`). prom-client's `AggregatorRegistry.aggregate` does the merge: values of the
 * same metric and labels are summed, so a counter counts the whole cluster, and per-instance
 * gauges stay apart by their `decode_instance` label.
 *
 * An instance that does not answer in time (its service's first reply within `maxWaitMs`, each
 * further one within `stallMs` of the one before) keeps its last report for `keepMs`, so the merged
 * counters do not dip (a dip reads as a counter reset to Prometheus); one silent longer is
 * dropped. A reply that breaks the contract is skipped, logged and counted, never merged.
 * @module
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { AggregatorRegistry, Counter, Gauge, type Registry } from "prom-client";
import {
  CALLS,
  METRICS_REPORT,
  type MetricSnapshot,
  type MetricsReport,
  SUBJECTS,
} from "../handoff/contract.ts";
import { parseBody } from "../nats/call.ts";

/** The `$SRV.STATS` data of a service whose metrics are `registry`. */
export async function metricsReport(registry: Registry): Promise<MetricsReport> {
  return { metrics: (await registry.getMetricsAsJSON()) as unknown as MetricSnapshot[] };
}

/** Options of {@linkcode ServiceReports}. */
export interface ServiceReportsOptions {
  /** How long one collection waits for the first reply of a service (default 1000 ms). */
  maxWaitMs?: number;
  /** A collection ends this long after the last reply (default 150 ms). */
  stallMs?: number;
  /** How long a silent instance's last report is kept (default 5 minutes). */
  keepMs?: number;
}

interface Held {
  service: string;
  at: number;
  metrics: MetricSnapshot[];
}

/**
 * The gateway's view of the services' metrics, and the metrics of that view itself:
 * `kvrelay_metrics_reporters{service}` (instances merged in the last collection) and
 * `kvrelay_metrics_report_errors_total{service}` (replies skipped as malformed).
 *
 * @example
 * ```ts
 * const reports = new ServiceReports(nc, ["prefill", "decode"], registry);
 * const text = await exposition(registry, await reports.collect());
 * ```
 */
export class ServiceReports {
  #nc: NatsConnection;
  #services: readonly string[];
  #maxWaitMs: number;
  #stallMs: number;
  #keepMs: number;
  #held = new Map<string, Held>();
  #reporters: Gauge<"service">;
  #errors: Counter<"service">;

  constructor(
    nc: NatsConnection,
    services: readonly string[],
    registry: Registry,
    opts: ServiceReportsOptions = {},
  ) {
    this.#nc = nc;
    this.#services = services;
    this.#maxWaitMs = opts.maxWaitMs ?? 1000;
    this.#stallMs = opts.stallMs ?? 150;
    this.#keepMs = opts.keepMs ?? 5 * 60_000;
    this.#reporters = new Gauge({
      name: "kvrelay_metrics_reporters",
      help: "Instances of each service whose metrics are merged here (a silent one counts until dropped)",
      labelNames: ["service"] as const,
      registers: [registry],
    });
    this.#errors = new Counter({
      name: "kvrelay_metrics_report_errors_total",
      help: "Metrics reports from services skipped because they broke the contract",
      labelNames: ["service"] as const,
      registers: [registry],
    });
  }

  /** Asks every instance of every service, then returns each live instance's latest metrics. */
  async collect(): Promise<MetricSnapshot[][]> {
    const started = Date.now();
    await Promise.all(this.#services.map((s) => this.#ask(s)));
    const out: MetricSnapshot[][] = [];
    for (const s of this.#services) this.#reporters.set({ service: s }, 0);
    for (const [key, h] of this.#held) {
      if (started - h.at > this.#keepMs) {
        this.#held.delete(key);
        continue;
      }
      this.#reporters.inc({ service: h.service });
      out.push(h.metrics);
    }
    return out;
  }

  async #ask(service: string): Promise<void> {
    let replies: AsyncIterable<{ data: Uint8Array }>;
    try {
      replies = await this.#nc.requestMany(SUBJECTS.serviceStats(service), new Uint8Array(0), {
        strategy: "stall",
        maxWait: this.#maxWaitMs,
        stall: this.#stallMs,
      });
    } catch (err) {
      console.error(`[metrics] asking ${service} for stats failed: ${(err as Error).message}`);
      return;
    }
    try {
      for await (const m of replies) {
        try {
          const stats = parseBody(CALLS.serviceStats.reply, m.data, `${service} stats reply`);
          const data = stats.endpoints.find((e) => e.data && "metrics" in e.data)?.data;
          if (!data) continue; // a service that reports no metrics
          const report = METRICS_REPORT(data, `${service} stats reply data`);
          this.#held.set(`${service}/${stats.id}`, { service, at: Date.now(), metrics: report.metrics });
        } catch (err) {
          this.#errors.inc({ service });
          console.error(`[metrics] skipped a report: ${(err as Error).message}`);
        }
      }
    } catch { /* no responders, or the connection closed: what came is kept */ }
  }
}

/** Prometheus text of `local` merged with the services' reports. */
export async function exposition(local: Registry, reports: MetricSnapshot[][]): Promise<string> {
  const own = (await local.getMetricsAsJSON()) as unknown as MetricSnapshot[];
  return await AggregatorRegistry.aggregate([own, ...reports]).metrics();
}

/** The content type of {@linkcode exposition}'s text. */
export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
