import type { MsgHdrs, NatsConnection } from "@nats-io/nats-core";
import { errors as natsErrors } from "@nats-io/nats-core";
import { ServiceError } from "@nats-io/services";
import { errorFromWire, KvrelayError } from "../errors.ts";
import { injectContext } from "../telemetry/mod.ts";
import { fromJsonBytes, toJsonBytes } from "./codec.ts";
import { type Deadline, setDeadlineHeader, timeLeft } from "./deadline.ts";

export interface RequestOptions {
  /** Longest wait for the reply; with a `deadline`, at most the time left until it. */
  timeoutMs: number;
  /** Extra headers; the active trace context (`traceparent`) is always added. */
  headers?: MsgHdrs;
  signal?: AbortSignal;
  /**
   * The request's deadline (shared/nats/deadline.ts): the time left travels in the
   * `Kvrelay-Timeout` header, and a spent deadline fails with `timeout` before sending.
   */
  deadline?: Deadline;
}

/**
 * Request/reply that speaks our error vocabulary: a service error reply becomes the same
 * `KvrelayError` the service threw, no responder becomes `unavailable`, a timeout `timeout`.
 * The active trace context travels in the headers, so the responder's spans join the trace.
 */
export async function requestBytes(
  nc: NatsConnection,
  subject: string,
  payload: Uint8Array,
  opts: RequestOptions,
): Promise<Uint8Array> {
  if (opts.signal?.aborted) throw new KvrelayError("timeout", `request to ${subject} aborted`);
  let timeoutMs = opts.timeoutMs;
  if (opts.deadline !== undefined) {
    const left = timeLeft(opts.deadline);
    if (left <= 0) throw new KvrelayError("timeout", `the request's deadline passed before ${subject}`);
    timeoutMs = Math.min(timeoutMs, left);
  }
  let msg;
  try {
    const headers = injectContext(opts.headers);
    if (opts.deadline !== undefined) setDeadlineHeader(headers, opts.deadline);
    const p = nc.request(subject, payload, { timeout: timeoutMs, headers });
    msg = opts.signal ? await raceAbort(p, opts.signal, subject) : await p;
  } catch (cause) {
    if (cause instanceof KvrelayError) throw cause;
    if (cause instanceof natsErrors.NoRespondersError) {
      throw new KvrelayError("unavailable", `no service answers on ${subject}`, { cause });
    }
    if (cause instanceof natsErrors.TimeoutError) {
      throw new KvrelayError("timeout", `no reply on ${subject} within ${timeoutMs} ms`, { cause });
    }
    if (cause instanceof natsErrors.RequestError && cause.isNoResponders()) {
      throw new KvrelayError("unavailable", `no service answers on ${subject}`, { cause });
    }
    throw new KvrelayError("unavailable", `request to ${subject} failed: ${(cause as Error).message}`, {
      cause,
    });
  }
  if (ServiceError.isServiceError(msg)) {
    let code = "internal";
    let message = msg.headers?.get("Nats-Service-Error") ?? "service error";
    let param: string | undefined;
    try {
      const body = fromJsonBytes<{ code?: string; message?: string; param?: string }>(msg.data);
      code = body.code ?? code;
      message = body.message ?? message;
      param = body.param;
    } catch { /* the description header is all there is */ }
    throw errorFromWire(code, message, param);
  }
  return msg.data;
}

export async function requestJson<T>(
  nc: NatsConnection,
  subject: string,
  body: unknown,
  opts: RequestOptions,
): Promise<T> {
  return fromJsonBytes<T>(await requestBytes(nc, subject, toJsonBytes(body), opts));
}

function raceAbort<T>(p: Promise<T>, signal: AbortSignal, subject: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new KvrelayError("timeout", `request to ${subject} aborted`));
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
