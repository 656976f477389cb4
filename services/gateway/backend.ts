/**
 * The gateway's view of the cluster: runs one completion across decode, prefill and
 * compression over NATS (shared/handoff/contract.ts) and yields its tokens; answers which
 * model is served and whether every service is up.
 *
 * Token events come to a subject nobody can guess (`kvrelay.tokens.<128 random bits>`) and are
 * used only when their MAC under the request's key checks out: an event that decode did not
 * sign is dropped before it is parsed, and never reaches the client.
 * @module
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { trace } from "@opentelemetry/api";
import type { Config } from "../../shared/config/mod.ts";
import { asKvrelayError, errorFromWire, KvrelayError } from "../../shared/errors.ts";
import { fromJsonBytes, pingService, requestBytes, toJsonBytes } from "../../shared/nats/mod.ts";
import { parseBody, requestCall } from "../../shared/nats/call.ts";
import { H_MAC, newStreamKey, randomId, verifyEvent } from "../../shared/nats/event_mac.ts";
import {
  CALLS,
  type ControlMessage,
  type DecodeOpenReply,
  EVENTS,
  type KvSettings,
  type KvUsage,
  type PrefillRunReply,
  type SamplingParams,
  SERVICE_NAMES,
  SUBJECTS,
  type TokenEvent,
} from "../../shared/handoff/contract.ts";
import { attr, getMetrics } from "../../shared/telemetry/mod.ts";

export interface ChatMessage {
  role: string;
  content: string;
}

export interface CompletionInput {
  requestId: string;
  prompt?: string;
  promptIds?: number[];
  messages?: ChatMessage[];
  sampling: SamplingParams;
  kv: KvSettings;
  stop: string[];
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  kv: KvUsage;
}

export type CompletionEvent =
  | { type: "text"; text: string }
  | { type: "done"; finishReason: "stop" | "length"; usage: Usage };

export interface ModelInfo {
  id: string;
  maxSeqLen: number;
}

export interface Backend {
  complete(input: CompletionInput, signal: AbortSignal): AsyncIterable<CompletionEvent>;
  model(): Promise<ModelInfo>;
  ready(): Promise<Record<string, boolean>>;
}

type Item =
  | { kind: "event"; ev: TokenEvent }
  | { kind: "prefill"; reply: PrefillRunReply }
  | { kind: "fail"; err: unknown };

/** A tiny async queue: pushes from callbacks, one awaiting reader. */
class Queue<T> {
  #items: T[] = [];
  #wake?: () => void;
  push(item: T) {
    this.#items.push(item);
    this.#wake?.();
  }
  async next(timeoutMs: number, signal: AbortSignal): Promise<T> {
    while (!this.#items.length) {
      if (signal.aborted) throw new KvrelayError("timeout", "request aborted");
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(
          () => reject(new KvrelayError("timeout", `no progress within ${timeoutMs} ms`)),
          timeoutMs,
        );
        const onAbort = () => resolve();
        signal.addEventListener("abort", onAbort, { once: true });
        this.#wake = () => {
          clearTimeout(t);
          signal.removeEventListener("abort", onAbort);
          resolve();
        };
      });
      this.#wake = undefined;
    }
    return this.#items.shift()!;
  }
}

/** Holds back text that could still grow into a stop string. */
export class StopMatcher {
  #stops: string[];
  #pending = "";
  constructor(stops: string[]) {
    this.#stops = stops.filter((s) => s.length > 0);
  }
  /** Returns the text safe to emit now, and whether a stop string was hit. */
  push(piece: string): { text: string; stopped: boolean } {
    this.#pending += piece;
    let cut = -1;
    for (const s of this.#stops) {
      const i = this.#pending.indexOf(s);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      const text = this.#pending.slice(0, cut);
      this.#pending = "";
      return { text, stopped: true };
    }
    let keep = 0;
    for (const s of this.#stops) {
      for (let k = Math.min(s.length - 1, this.#pending.length); k > keep; k--) {
        if (this.#pending.endsWith(s.slice(0, k))) {
          keep = k;
          break;
        }
      }
    }
    const text = this.#pending.slice(0, this.#pending.length - keep);
    this.#pending = this.#pending.slice(this.#pending.length - keep);
    return { text, stopped: false };
  }
  flush(): string {
    const t = this.#pending;
    this.#pending = "";
    return t;
  }
}

export class NatsBackend implements Backend {
  #nc: NatsConnection;
  #config: Config;
  #model?: { info: ModelInfo; at: number };

  constructor(nc: NatsConnection, config: Config) {
    this.#nc = nc;
    this.#config = config;
  }

  async model(): Promise<ModelInfo> {
    if (this.#model && Date.now() - this.#model.at < 5000) return this.#model.info;
    const bytes = await requestBytes(this.#nc, "$SRV.INFO.prefill", new Uint8Array(0), { timeoutMs: 2000 });
    const info = fromJsonBytes<{ metadata?: Record<string, string> }>(bytes);
    const id = this.#config.modelName ?? info.metadata?.model ?? "unknown";
    const m = { id, maxSeqLen: Number(info.metadata?.max_seq_len ?? 0) };
    this.#model = { info: m, at: Date.now() };
    return m;
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

  async *#complete(input: CompletionInput, signal: AbortSignal): AsyncIterable<CompletionEvent> {
    const nc = this.#nc;
    const timeoutMs = this.#config.requestTimeoutMs;
    const tokenSubject = SUBJECTS.tokens(randomId());
    const tokenKey = newStreamKey();
    const queue = new Queue<Item>();
    let forged = 0;
    const sub = nc.subscribe(tokenSubject, {
      callback: (err, msg) => {
        if (err) return queue.push({ kind: "fail", err });
        if (!verifyEvent(tokenKey, tokenSubject, msg.data, msg.headers?.get(H_MAC))) {
          if (forged++ === 0) {
            console.error(`[gateway] ${input.requestId}: dropped a token event with a bad MAC`);
          }
          getMetrics().failures.add(1, { [attr.ERROR_TYPE]: "forged_event", [attr.STAGE]: "gateway" });
          return;
        }
        try {
          queue.push({ kind: "event", ev: parseBody(EVENTS.token.check, msg.data, EVENTS.token.name) });
        } catch (e) {
          queue.push({
            kind: "fail",
            err: new KvrelayError("corrupt_bundle", `bad token event: ${(e as Error).message}`),
          });
        }
      },
    });
    let open: DecodeOpenReply | undefined;
    let finished = false;
    try {
      open = await requestCall(nc, CALLS.decodeOpen, SUBJECTS.decodeOpen, {
        requestId: input.requestId,
        sampling: input.sampling,
        tokenSubject,
        tokenKey,
      }, { timeoutMs: 5000, signal });
      requestCall(nc, CALLS.prefillRun, SUBJECTS.prefillRun, {
        requestId: input.requestId,
        prompt: input.prompt,
        promptIds: input.promptIds,
        messages: input.messages,
        sampling: input.sampling,
        kv: input.kv,
        decodeIngest: open.ingest,
      }, { timeoutMs, signal }).then(
        (reply) => queue.push({ kind: "prefill", reply }),
        (err) => queue.push({ kind: "fail", err }),
      );
      const stop = new StopMatcher(input.stop);
      let prefill: PrefillRunReply | undefined;
      let done: Extract<TokenEvent, { type: "done" }> | undefined;
      let stoppedByString = false;
      let completionTokens = 0;
      let expectSeq = 0;
      while (!(prefill && (done || stoppedByString))) {
        const item = await queue.next(timeoutMs, signal);
        if (signal.aborted) return;
        if (item.kind === "fail") throw item.err;
        if (item.kind === "prefill") {
          prefill = item.reply;
          continue;
        }
        const ev = item.ev;
        if (ev.seq !== expectSeq++) {
          throw new KvrelayError(
            "corrupt_bundle",
            `token stream gap: got event ${ev.seq}, expected ${expectSeq - 1}`,
          );
        }
        if (ev.type === "error") throw errorFromWire(ev.code, ev.message);
        if (ev.type === "done") {
          done = ev;
          continue;
        }
        if (stoppedByString) continue;
        completionTokens++;
        const out = stop.push(ev.text);
        if (out.text) yield { type: "text", text: out.text };
        if (out.stopped) {
          stoppedByString = true;
          this.#cancel(open.control, input.requestId);
        }
      }
      if (!stoppedByString) {
        const rest = stop.flush();
        if (rest) yield { type: "text", text: rest };
      }
      finished = true;
      const generate = Math.round((done?.generateMs ?? 0) * 1000) / 1000;
      const kv: KvUsage = { ...prefill.kv, ms: { ...prefill.kv.ms, generate } };
      const promptTokens = prefill.promptIds.length;
      yield {
        type: "done",
        finishReason: stoppedByString || !done ? "stop" : done.finishReason,
        usage: {
          prompt_tokens: promptTokens,
          completion_tokens: completionTokens,
          total_tokens: promptTokens + completionTokens,
          kv,
        },
      };
    } finally {
      sub.unsubscribe();
      if (open && !finished) this.#cancel(open.control, input.requestId);
    }
  }

  #cancel(control: string, requestId: string): void {
    // Best effort: the decode instance also frees the slot when its transfer expires.
    const body: ControlMessage = { op: "cancel", requestId };
    requestBytes(this.#nc, control, toJsonBytes(body), { timeoutMs: 2000 }).catch(() => {});
  }
}
