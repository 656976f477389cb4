/**
 * W3C trace context over NATS headers. NATS is not instrumented by Deno, so every hop
 * injects `traceparent` (and `tracestate`, baggage) into the message headers on send and
 * extracts it on receipt. Uses the global propagator: Deno's under `OTEL_DENO=true`, a
 * no-op otherwise (then `injectContext` adds nothing and `extractContext` returns the
 * active context).
 * @module
 */
import { type Attributes, type Context, context, propagation, type Span, SpanKind } from "@opentelemetry/api";
import type { TextMapGetter, TextMapSetter } from "@opentelemetry/api";
import { headers as natsHeaders, Match, type MsgHdrs } from "@nats-io/nats-core";
import { MESSAGING_SYSTEM } from "./attributes.ts";
import { withSpan } from "./tracer.ts";

const setter: TextMapSetter<MsgHdrs> = {
  set(carrier, key, value) {
    carrier.set(key, value);
  },
};

const getter: TextMapGetter<MsgHdrs> = {
  keys(carrier) {
    return carrier.keys();
  },
  get(carrier, key) {
    if (!carrier.has(key, Match.IgnoreCase)) return undefined;
    return carrier.get(key, Match.IgnoreCase);
  },
};

/**
 * Writes the trace context of `ctx` (the active one unless told) into `headers`, creating
 * them when absent, and returns them.
 *
 * @example
 * ```ts
 * const reply = await nc.request("kvrelay.prefill", body, { headers: injectContext(), timeout: 5000 });
 * ```
 */
export function injectContext(headers?: MsgHdrs, ctx: Context = context.active()): MsgHdrs {
  const h = headers ?? natsHeaders();
  propagation.inject(ctx, h, setter);
  return h;
}

/**
 * The context carried in `headers` (remote parent span, baggage), layered over the active
 * context; the active context itself when there are no headers or no `traceparent`.
 *
 * @example
 * ```ts
 * const ctx = extractContext(msg.headers);
 * context.with(ctx, () => handle(msg));
 * ```
 */
export function extractContext(headers: MsgHdrs | undefined): Context {
  const active = context.active();
  if (!headers) return active;
  return propagation.extract(active, headers, getter);
}

/** Options of {@linkcode withRemoteParent}. */
export interface RemoteParentOptions {
  /** Attributes of the new span (`messaging.system` is added). */
  attrs?: Attributes;
  /** `SERVER` for request/reply handlers (default), `CONSUMER` for streamed messages. */
  kind?: SpanKind;
}

/**
 * Runs a NATS handler in a new span whose parent is the context in `msgHeaders`, so the
 * handler's spans join the sender's trace. Errors are recorded as in `withSpan`.
 *
 * @example
 * ```ts
 * for await (const msg of nc.subscribe("kvrelay.prefill")) {
 *   await withRemoteParent(msg.headers, "prefill", async (span) => {
 *     msg.respond(await prefill(msg.data), { headers: injectContext() });
 *   });
 * }
 * ```
 */
export function withRemoteParent<T>(
  msgHeaders: MsgHdrs | undefined,
  name: string,
  fn: (span: Span) => T,
  options: RemoteParentOptions = {},
): T {
  const attrs = { [MESSAGING_SYSTEM]: "nats", ...options.attrs };
  return context.with(
    extractContext(msgHeaders),
    () => withSpan(name, attrs, fn, { kind: options.kind ?? SpanKind.SERVER }),
  );
}
