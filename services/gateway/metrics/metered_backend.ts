/**
 * A `Backend` that measures what passes through it: TTFT and time per output token at the
 * gateway's edge, the tokens of each finished completion, and a `RecentRequests` entry with its
 * `usage.kv`. It changes nothing in the events it passes on.
 * @module
 */
import { trace } from "@opentelemetry/api";
import { asKvrelayError } from "../../../shared/errors.ts";
import type { Backend, CompletionEvent, CompletionInput, Usage } from "../backend.ts";
import type { GatewayMetrics } from "./gateway_metrics.ts";

const NO_TRACE = /^0+$/;

/** Wraps `backend`; every completion is counted on `metrics`. */
export function meteredBackend(backend: Backend, metrics: GatewayMetrics): Backend {
  return {
    model: () => backend.model(),
    ready: () => backend.ready(),
    tokenize: (req) => backend.tokenize(req),
    detokenize: (tokens) => backend.detokenize(tokens),
    async *complete(input: CompletionInput, signal: AbortSignal): AsyncIterable<CompletionEvent> {
      const traceId = trace.getActiveSpan()?.spanContext().traceId;
      const t0 = performance.now();
      let firstAt: number | undefined;
      let lastAt = 0;
      let usage: Usage | undefined;
      let finishReason: string | undefined;
      let outcome = "ok";
      try {
        for await (const ev of backend.complete(input, signal)) {
          const now = performance.now();
          if (ev.type === "text") {
            firstAt ??= now;
            lastAt = now;
          } else {
            usage = ev.usage;
            finishReason = ev.finishReason;
          }
          yield ev;
        }
        if (signal.aborted) outcome = "cancelled";
      } catch (err) {
        outcome = asKvrelayError(err).code;
        throw err;
      } finally {
        const tokens = usage?.completion_tokens ?? 0;
        if (firstAt !== undefined) {
          metrics.ttftMs.observe(firstAt - t0);
          if (tokens > 1) metrics.tpotMs.observe((lastAt - firstAt) / (tokens - 1));
        }
        if (usage) {
          metrics.tokensIn.inc(usage.prompt_tokens);
          metrics.tokensOut.inc(usage.completion_tokens);
          const canary = usage.kv?.canary;
          if (canary) {
            metrics.canaryAgreement.observe(canary.top1_agreement);
            metrics.canaryKl.observe(canary.mean_kl);
          }
        }
        metrics.recent.add({
          id: input.requestId,
          endpoint: input.messages ? "/v1/chat/completions" : "/v1/completions",
          at: Date.now(),
          outcome,
          finishReason,
          ttftMs: firstAt === undefined ? undefined : round(firstAt - t0),
          totalMs: round(performance.now() - t0),
          promptTokens: usage?.prompt_tokens,
          completionTokens: usage?.completion_tokens,
          kv: usage?.kv,
          traceId: traceId && !NO_TRACE.test(traceId) ? traceId : undefined,
        });
      }
    },
  };
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;
