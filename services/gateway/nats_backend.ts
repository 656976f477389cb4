/**
 * The gateway's view of the cluster: runs one completion across decode, prefill and
 * compression over NATS (shared/handoff/contract.ts; one run is completion_run.ts) and yields
 * its tokens, running it again when a run fails before its first token with `unavailable`;
 * answers which model is served and whether every service is up.
 * @module
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { trace } from "@opentelemetry/api";
import type { Config } from "../../shared/config/mod.ts";
import { asKvrelayError } from "../../shared/errors.ts";
import { fromJsonBytes, pingService, requestBytes } from "../../shared/nats/mod.ts";
import { deadlineIn, timeLeft } from "../../shared/nats/deadline.ts";
import {
  CALLS,
  SERVICE_NAMES,
  SUBJECTS,
  type TokenizeReply,
  type TokenizeRequest,
} from "../../shared/handoff/contract.ts";
import { requestCall } from "../../shared/nats/call.ts";
import { attr, getMetrics } from "../../shared/telemetry/mod.ts";
import type { Backend, CompletionEvent, CompletionInput, ModelInfo } from "./backend.ts";
import { runCompletion } from "./completion_run.ts";

export class NatsBackend implements Backend {
  #nc: NatsConnection;
  #config: Config;
  #model?: { info: ModelInfo; at: number };

  constructor(nc: NatsConnection, config: Config) {
    this.#nc = nc;
    this.#config = config;
  }

  /**
   * The served model, as prefill describes it. Once known, it is answered at once and looked up
   * again in the background at most every 5 s, so a busy or paused prefill delays no request
   * (their deadlines decide).
   */
  async model(): Promise<ModelInfo> {
    if (!this.#model) return await this.#lookUpModel();
    if (Date.now() - this.#model.at >= 5000) {
      this.#model.at = Date.now();
      this.#lookUpModel().catch(() => {});
    }
    return this.#model.info;
  }

  async #lookUpModel(): Promise<ModelInfo> {
    const bytes = await requestBytes(this.#nc, "$SRV.INFO.prefill", new Uint8Array(0), { timeoutMs: 2000 });
    const info = fromJsonBytes<{ metadata?: Record<string, string> }>(bytes);
    const id = this.#config.modelName ?? info.metadata?.model ?? "unknown";
    const m = { id, maxSeqLen: Number(info.metadata?.max_seq_len ?? 0) };
    this.#model = { info: m, at: Date.now() };
    return m;
  }

  tokenize(req: TokenizeRequest): Promise<TokenizeReply> {
    return requestCall(this.#nc, CALLS.prefillTokenize, SUBJECTS.prefillTokenize, req, {
      timeoutMs: this.#config.requestTimeoutMs,
    });
  }

  async detokenize(tokens: number[]): Promise<string> {
    const r = await requestCall(this.#nc, CALLS.prefillDetokenize, SUBJECTS.prefillDetokenize, { tokens }, {
      timeoutMs: this.#config.requestTimeoutMs,
    });
    return r.prompt;
  }

  async ready(): Promise<Record<string, boolean>> {
    const out: Record<string, boolean> = {};
    await Promise.all(SERVICE_NAMES.map(async (s) => out[s] = await pingService(this.#nc, s, 1000)));
    return out;
  }

  /**
   * Runs one completion. The NATS requests carry the active trace context (the gateway's
   * server span), so every service's spans join this request's trace. Records TTFT, time
   * per output token, the request counter and failures by `error.type`.
   */
  async *complete(input: CompletionInput, signal: AbortSignal): AsyncIterable<CompletionEvent> {
    const metrics = getMetrics();
    const span = trace.getActiveSpan();
    const t0 = performance.now();
    let firstAt: number | undefined;
    let lastAt = 0;
    let tokens = 0;
    let outcome = "ok";
    try {
      for await (const ev of this.#complete(input, signal)) {
        if (ev.type === "text" || ev.type === "done") {
          // Measured at the first/last text the client gets (stop-string hold-back included).
          const now = performance.now();
          if (firstAt === undefined && ev.type === "text") {
            firstAt = now;
            span?.addEvent("first_token");
          }
          if (ev.type === "text") lastAt = now;
          if (ev.type === "done") tokens = ev.usage.completion_tokens;
        }
        yield ev;
      }
      if (signal.aborted) outcome = "cancelled";
    } catch (err) {
      const e = asKvrelayError(err);
      outcome = e.code;
      metrics.failures.add(1, { [attr.ERROR_TYPE]: e.code, [attr.STAGE]: "gateway" });
      throw err;
    } finally {
      const labels = { [attr.MODEL]: this.#model?.info.id ?? "unknown" };
      metrics.requests.add(1, { ...labels, outcome });
      if (firstAt !== undefined) {
        metrics.ttft.record((firstAt - t0) / 1000, labels);
        if (tokens > 1) metrics.tpot.record((lastAt - firstAt) / 1000 / (tokens - 1), labels);
      }
    }
  }

  /**
   * Runs the completion, and runs it again (at most `completionAttempts` times in all) when a
   * run fails with `unavailable` before any token was taken: a decode instance that refused
   * (full) or died, a prefill whose hand-off found no decode. Prefill and compression are
   * idempotent, and each run has a request id of its own. All runs share one deadline.
   */
  async *#complete(input: CompletionInput, signal: AbortSignal): AsyncIterable<CompletionEvent> {
    const deadline = deadlineIn(this.#config.requestTimeoutMs);
    let streamed = false;
    for (let attempt = 1;; attempt++) {
      const requestId = attempt === 1 ? input.requestId : `${input.requestId}-${attempt}`;
      try {
        yield* runCompletion(input, requestId, {
          nc: this.#nc,
          deadline,
          livenessMs: this.#config.livenessMs,
          signal,
          onFirstToken: () => streamed = true,
        });
        return;
      } catch (err) {
        const e = asKvrelayError(err);
        const again = !streamed && e.code === "unavailable" && attempt < this.#config.completionAttempts &&
          !signal.aborted && timeLeft(deadline) > 0;
        if (!again) throw err;
        console.error(
          `[gateway] ${input.requestId}: run ${attempt} failed before a token (${e.message}); again`,
        );
        getMetrics().failures.add(1, { [attr.ERROR_TYPE]: e.code, [attr.STAGE]: "gateway-retry" });
      }
    }
  }
}
