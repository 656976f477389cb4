/**
 * One run of a completion across the cluster (shared/handoff/contract.ts): open a decode
 * instance, start prefill, and turn the decode instance's token events into text.
 *
 * Nothing here waits without a bound. Until the first token the request's deadline bounds
 * every wait, and each NATS request carries what is left of it. While decode holds the request,
 * its heartbeats and tokens show it is alive: after `livenessMs` of silence the run probes
 * decode's control subject. No responder (the instance is gone) or `held: false` end the run
 * with a typed 503 at once; a probe that gets no reply within `livenessMs` is probed again, and
 * a second one ends it too, so a stopped or wedged instance costs about three liveness windows
 * while one whose event loop lags under load gets that long to answer. The caller may run it
 * again while no token was taken.
 *
 * Token events come to a subject nobody can guess (`kvrelay.tokens.<128 random bits>`) and are
 * used only when their MAC under the request's key checks out: an event that decode did not
 * sign is dropped before it is parsed, and never reaches the client.
 * @module
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { errorFromWire, KvrelayError } from "../../shared/errors.ts";
import { requestBytes, type RequestOptions, toJsonBytes } from "../../shared/nats/mod.ts";
import { parseBody, requestCall } from "../../shared/nats/call.ts";
import { type Deadline, timeLeft } from "../../shared/nats/deadline.ts";
import { H_MAC, newStreamKey, randomId, verifyEvent } from "../../shared/nats/event_mac.ts";
import {
  CALLS,
  type ControlMessage,
  type DecodeOpenReply,
  type DecodeOpenRequest,
  EVENTS,
  type KvUsage,
  type PrefillRunReply,
  SUBJECTS,
  type TokenEvent,
} from "../../shared/handoff/contract.ts";
import { attr, getMetrics } from "../../shared/telemetry/mod.ts";
import type { CompletionEvent, CompletionInput, TokenOut } from "./backend.ts";
import { estimateKvTokens } from "./kv_estimate.ts";
import { StopMatcher } from "./stop_matcher.ts";
import { withDecodeKv } from "../../shared/pipeline/usage.ts";

/** What a run needs besides its input. */
export interface RunContext {
  nc: NatsConnection;
  /** The request's one deadline, for everything before the first token. */
  deadline: Deadline;
  /** Silence on the token subject before decode is probed; also the probe's own limit. */
  livenessMs: number;
  signal: AbortSignal;
  /** Called when the first token event is taken: from then on the run cannot be repeated. */
  onFirstToken(): void;
}

type Item =
  | { kind: "event"; ev: TokenEvent }
  | { kind: "prefill"; reply: PrefillRunReply }
  | { kind: "probe"; verdict: "held" | "gone" | "silent"; why: string }
  | { kind: "fail"; err: unknown };

/**
 * Keeps tokens in step with the text the stop matcher lets out: a token goes out with the text
 * in which it ends; when a stop string cuts the text, with the text in which it starts.
 */
class TokenAligner {
  #pending: { tok: TokenOut; start: number; end: number }[] = [];
  #produced = 0;
  #released = 0;
  push(tok: TokenOut): void {
    this.#pending.push({ tok, start: this.#produced, end: this.#produced + tok.text.length });
    this.#produced += tok.text.length;
  }
  /** The tokens that go with `chars` more characters of text (`final`: no more text follows). */
  release(chars: number, final: boolean): TokenOut[] {
    this.#released += chars;
    const out: TokenOut[] = [];
    while (this.#pending.length) {
      const p = this.#pending[0];
      const inText = final ? p.start < this.#released || p.end <= this.#released : p.end <= this.#released;
      if (!inText) break;
      out.push(p.tok);
      this.#pending.shift();
    }
    if (final) this.#pending = [];
    return out;
  }
}

/** A tiny async queue: pushes from callbacks, one awaiting reader. */
class Queue<T> {
  #items: T[] = [];
  #wake?: () => void;
  push(item: T) {
    this.#items.push(item);
    this.#wake?.();
  }
  /** The next item; undefined after `waitMs` without one, or once `signal` aborts. */
  async next(waitMs: number, signal: AbortSignal): Promise<T | undefined> {
    if (!this.#items.length && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          signal.removeEventListener("abort", done);
          this.#wake = undefined;
          resolve();
        };
        const t = setTimeout(done, waitMs);
        signal.addEventListener("abort", done, { once: true });
        this.#wake = done;
      });
    }
    return this.#items.shift();
  }
}

/** Runs the completion once, as `requestId`; yields text, then one `done`. */
export async function* runCompletion(
  input: CompletionInput,
  requestId: string,
  ctx: RunContext,
): AsyncIterable<CompletionEvent> {
  const { nc, deadline, livenessMs, signal } = ctx;
  const tokenSubject = SUBJECTS.tokens(randomId());
  const tokenKey = newStreamKey();
  const queue = new Queue<Item>();
  let forged = 0;
  const sub = nc.subscribe(tokenSubject, {
    callback: (err, msg) => {
      if (err) return queue.push({ kind: "fail", err });
      if (!verifyEvent(tokenKey, tokenSubject, msg.data, msg.headers?.get(H_MAC))) {
        if (forged++ === 0) console.error(`[gateway] ${requestId}: dropped a token event with a bad MAC`);
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
    open = await openDecode(nc, {
      requestId,
      sampling: input.sampling,
      tokenSubject,
      tokenKey,
      kvTokens: estimateKvTokens(input),
      kv: input.kv,
    }, { timeoutMs: livenessMs, deadline }); // not cut short: an open that succeeds is cancelled below
    const decode = open;
    if (signal.aborted) return;
    requestCall(nc, CALLS.prefillRun, SUBJECTS.prefillRun, {
      requestId,
      prompt: input.prompt,
      promptIds: input.promptIds,
      messages: input.messages,
      sampling: input.sampling,
      kv: input.kv,
      decodeIngest: decode.ingest,
    }, { timeoutMs: timeLeft(deadline), signal, deadline }).then(
      (reply) => queue.push({ kind: "prefill", reply }),
      (err) => queue.push({ kind: "fail", err }),
    );
    const stop = new StopMatcher(input.stop);
    const tokens = new TokenAligner();
    let prefill: PrefillRunReply | undefined;
    let done: Extract<TokenEvent, { type: "done" }> | undefined;
    let stoppedByString = false;
    let completionTokens = 0;
    let expectSeq = 0;
    let lastHeard = performance.now();
    let probing = false;
    /** Probes in a row that got no reply. */
    let silentProbes = 0;
    while (!(prefill && (done || stoppedByString))) {
      const decodeHolds = !done && !stoppedByString;
      const silence = performance.now() - lastHeard;
      // Waiting only for prefill's reply: its own request is bounded by the deadline.
      let waitMs = decodeHolds ? (probing ? livenessMs : Math.max(1, livenessMs - silence)) : 1000;
      if (expectSeq === 0 || !decodeHolds) waitMs = Math.min(waitMs, Math.max(1, timeLeft(deadline)));
      const item = await queue.next(waitMs, signal);
      if (signal.aborted) return;
      if (!item) {
        if ((expectSeq === 0 || !decodeHolds) && timeLeft(deadline) === 0) {
          throw new KvrelayError(
            "timeout",
            prefill || !decodeHolds
              ? "prefill did not reply within the request's deadline"
              : "no first token within the request's deadline",
          );
        }
        if (decodeHolds && !probing && performance.now() - lastHeard >= livenessMs) {
          probing = true;
          probe(nc, decode, requestId, livenessMs).then((p) => queue.push(p));
        }
        continue;
      }
      if (item.kind === "fail") throw item.err;
      if (item.kind === "prefill") {
        prefill = item.reply;
        continue;
      }
      if (item.kind === "probe") {
        probing = false;
        if (!decodeHolds) continue;
        if (item.verdict === "held") {
          lastHeard = performance.now();
          silentProbes = 0;
          continue;
        }
        if (item.verdict === "gone" || ++silentProbes >= 2) {
          throw new KvrelayError("unavailable", `decode instance ${decode.instance} ${item.why}`, {
            retryAfterS: 1,
          });
        }
        continue;
      }
      const ev = item.ev;
      lastHeard = performance.now();
      silentProbes = 0;
      if (ev.type === "heartbeat") {
        if (ev.seq !== expectSeq) {
          throw new KvrelayError(
            "corrupt_bundle",
            `token stream gap: heartbeat at ${ev.seq}, expected ${expectSeq}`,
          );
        }
        continue;
      }
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
      if (completionTokens++ === 0) ctx.onFirstToken();
      if (ev.logprobs) tokens.push({ id: ev.id, text: ev.text, ...ev.logprobs });
      const out = stop.push(ev.text);
      const taken = tokens.release(out.text.length, out.stopped);
      if (out.text || taken.length) {
        yield { type: "text", text: out.text, ...(ev.logprobs ? { tokens: taken } : {}) };
      }
      if (out.stopped) {
        stoppedByString = true;
        cancel(nc, decode.control, requestId);
      }
    }
    if (!stoppedByString) {
      const rest = stop.flush();
      const taken = tokens.release(rest.length, true);
      if (rest || taken.length) {
        yield {
          type: "text",
          text: rest,
          ...(input.sampling.logprobs !== undefined ? { tokens: taken } : {}),
        };
      }
    }
    finished = true;
    const generate = Math.round((done?.generateMs ?? 0) * 1000) / 1000;
    const kv: KvUsage = { ...prefill.kv, ...withDecodeKv(done?.kv), ms: { ...prefill.kv.ms, generate } };
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
    if (open && !finished) cancel(nc, open.control, requestId);
  }
}

/**
 * `decode.open`. An instance that does not answer within the liveness window is as good as
 * gone (`unavailable`, so the run may go again, most likely to another instance) while the
 * deadline still has time.
 */
async function openDecode(
  nc: NatsConnection,
  req: DecodeOpenRequest,
  opts: RequestOptions & { deadline: Deadline },
): Promise<DecodeOpenReply> {
  try {
    return await requestCall(nc, CALLS.decodeOpen, SUBJECTS.decodeOpen, req, opts);
  } catch (err) {
    if (err instanceof KvrelayError && err.code === "timeout" && timeLeft(opts.deadline) > 0) {
      const message = `a decode instance did not answer open within ${opts.timeoutMs} ms`;
      throw new KvrelayError("unavailable", message, { cause: err, retryAfterS: 1 });
    }
    throw err;
  }
}

/** Asks decode whether it still holds the request; never rejects. */
async function probe(
  nc: NatsConnection,
  decode: DecodeOpenReply,
  requestId: string,
  timeoutMs: number,
): Promise<Item> {
  const body: ControlMessage = { op: "probe", requestId };
  try {
    const r = await requestCall(nc, CALLS.decodeControl, decode.control, body, { timeoutMs });
    return { kind: "probe", verdict: r.held ? "held" : "gone", why: "no longer holds the request" };
  } catch (err) {
    const code = err instanceof KvrelayError ? err.code : "internal";
    if (code === "timeout") {
      return {
        kind: "probe",
        verdict: "silent",
        why: `sent nothing and answered no probe for ${2 * timeoutMs} ms`,
      };
    }
    const why = code === "unavailable"
      ? "is gone (no responder)"
      : `failed a probe: ${(err as Error).message}`;
    return { kind: "probe", verdict: "gone", why };
  }
}

/** Best effort: the decode instance also frees the request when its transfer expires. */
function cancel(nc: NatsConnection, control: string, requestId: string): void {
  const body: ControlMessage = { op: "cancel", requestId };
  requestBytes(nc, control, toJsonBytes(body), { timeoutMs: 2000 }).catch(() => {});
}
