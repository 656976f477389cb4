/**
 * What the gateway itself counts, in its own prom-client registry: requests by endpoint and
 * HTTP status, completion tokens in and out, TTFT and time per output token as the client sees
 * them, the accuracy canary's verdicts on sampled requests (KVRELAY_CANARY_RATE), and the ring of
 * recent completions the dashboard lists. The services' metrics join
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
  readonly canaryAgreement: Histogram;
  readonly canaryKl: Histogram;

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
    this.canaryAgreement = new Histogram({
      name: "kvrelay_canary_top1_agreement",
      help:
        "Accuracy canary, per sampled request: share of decode steps whose most likely next token is the same with the uncompressed KV",
      buckets: [0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 1],
      registers,
    });
    this.canaryKl = new Histogram({
      name: "kvrelay_canary_kl_nats",
      help:
        "Accuracy canary, per sampled request: mean KL(uncompressed || compressed) of the next-token distributions, in nats",
      buckets: [0.001, 0.01, 0.03, 0.1, 0.3, 1, 3],
      registers,
    });
  }
}
