import { assert, assertEquals } from "@std/assert";
import { type Context, context, propagation, type TextMapPropagator, trace } from "@opentelemetry/api";
import { headers } from "@nats-io/nats-core";
import { extractContext, injectContext, withRemoteParent } from "./nats_context.ts";
import { withSyncContext } from "./testdata/sync_context.ts";

const TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

/** A W3C `traceparent`-only propagator, standing in for the one Deno registers. */
const w3c: TextMapPropagator = {
  inject(ctx, carrier, setter) {
    const sc = trace.getSpanContext(ctx);
    if (sc) setter.set(carrier, "traceparent", `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags}`);
  },
  extract(ctx: Context, carrier, getter) {
    const v = getter.get(carrier, "traceparent");
    const m = typeof v === "string" ? /^00-([0-9a-f]{32})-([0-9a-f]{16})-(\d\d)$/.exec(v) : null;
    return m
      ? trace.setSpanContext(ctx, { traceId: m[1], spanId: m[2], traceFlags: 1, isRemote: true })
      : ctx;
  },
  fields: () => ["traceparent"],
};

function withPropagator(fn: () => void): void {
  propagation.setGlobalPropagator(w3c);
  try {
    fn();
  } finally {
    propagation.disable();
  }
}

Deno.test("injectContext() adds nothing and extractContext() returns the active context without OTel", () => {
  const h = injectContext();
  assertEquals(h.keys(), []);
  h.set("traceparent", TRACEPARENT);
  assertEquals(extractContext(h), context.active());
  assertEquals(extractContext(undefined), context.active());
});

Deno.test("injectContext() writes traceparent into NATS headers; extractContext() reads it back", () => {
  withPropagator(() => {
    const h = headers();
    h.set("Traceparent", TRACEPARENT); // NATS keeps case: extraction must not depend on it
    const ctx = extractContext(h);
    assertEquals(trace.getSpanContext(ctx)?.spanId, "b7ad6b7169203331");
    const out = injectContext(undefined, ctx);
    assertEquals(out.get("traceparent"), TRACEPARENT);
    const same = headers();
    assert(injectContext(same, ctx) === same, "returns the headers it was given");
  });
});

Deno.test("withRemoteParent() runs the handler under the remote context and returns its value", () => {
  withPropagator(() => {
    const h = headers();
    h.set("traceparent", TRACEPARENT);
    // The no-op tracer makes a non-recording span that carries the parent's context.
    const seen = withSyncContext(() =>
      withRemoteParent(h, "prefill", () => trace.getActiveSpan()?.spanContext())
    );
    assertEquals([seen?.traceId, seen?.spanId], ["0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"]);
    assertEquals(withRemoteParent(undefined, "prefill", () => 7), 7);
  });
});
