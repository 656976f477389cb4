/**
 * What the gateway itself counts, in its own prom-client registry: requests by endpoint and
 * HTTP status, completion tokens in and out, TTFT and time per output token as the client sees
 * them, and the ring of recent completions the dashboard lists. The services' metrics join
 * these at scrape time (shared/metrics/report.ts).
 * @module
 */
import { Counter, Histogram, Registry } from "prom-client";
import { TPOT_MS_BUCKETS, TTFT_MS_BUCKETS } from "../../../shared/metrics/mod.ts";
import { RecentRequests } from "./recent_requests.ts";

/** The gateway's instruments; one per app. */
export class GatewayMetrics {
  readonly registry = new Registry();
  readonly recent = new RecentRequests();
  readonly requests: Counter<"endpoint" | "status">;
  readonly tokensIn: Counter;
  readonly tokensOut: Counter;
  readonly ttftMs: Histogram;
  readonly tpotMs: Histogram;

  constructor() {
    const registers = [this.registry];
    this.requests = new Counter({
      name: "kvrelay_requests_total",
      help:
        "HTTP requests to the API by route and status (a stream that fails after it started counts as 200)",
      labelNames: ["endpoint", "status"] as const,
      registers,
    });
    this.tokensIn = new Counter({
      name: "kvrelay_input_tokens_total",
      help: "Prompt tokens of completed completions",
      registers,
    });
    this.tokensOut = new Counter({
      name: "kvrelay_output_tokens_total",
      help: "Generated tokens of completed completions",
      registers,
    });
    this.ttftMs = new Histogram({
      name: "kvrelay_ttft_ms",
      help: "Time to first token in milliseconds, from the request reaching the gateway to its first text",
      buckets: TTFT_MS_BUCKETS,
      registers,
    });
    this.tpotMs = new Histogram({
      name: "kvrelay_tpot_ms",
      help: "Time per output token after the first in milliseconds, as the client receives them",
      buckets: TPOT_MS_BUCKETS,
      registers,
    });
  }
}
