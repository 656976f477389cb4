/**
 * A child process for the export tests, run with `OTEL_DENO=true` and the endpoint of the
 * test's receiver. Modes:
 *   responder NATS_URL  answers one request on `kvrelay.test.prefill` in a span parented by
 *                       the request's headers, prints "ready", exits after replying
 *   caller NATS_URL     opens a root span, requests `kvrelay.test.prefill` with injected
 *                       context, then a failing span; prints the root's trace id
 *   serve               Hono app on a free port with `honoRouteName` and `installShutdown`;
 *                       prints "ready PORT", stops on SIGTERM
 * @module
 */
import { connect } from "@nats-io/transport-node";
import { SpanKind, trace } from "@opentelemetry/api";
import { Hono } from "hono";
import { KvrelayError } from "../../errors.ts";
import * as attr from "../attributes.ts";
import { honoRouteName } from "../hono_route_name.ts";
import { getMetrics } from "../metrics.ts";
import { injectContext, withRemoteParent } from "../nats_context.ts";
import { installShutdown, onShutdown } from "../shutdown.ts";
import { withSpan } from "../tracer.ts";

const SUBJECT = "kvrelay.test.prefill";
const [mode, natsUrl] = Deno.args;

if (mode === "responder") {
  const nc = await connect({ servers: natsUrl });
  const sub = nc.subscribe(SUBJECT, { max: 1 });
  await nc.flush();
  console.log("ready");
  for await (const msg of sub) {
    await withRemoteParent(msg.headers, "prefill", async () => {
      await withSpan("encode", {
        [attr.LAYER]: "0-3",
        [attr.KV_BYTES_RAW]: 4096,
        [attr.KV_BYTES_ENCODED]: 1024,
        [attr.KV_RATIO]: 4,
        [attr.CODEC_ERROR_BOUND]: 0.01,
      }, async (span) => {
        await new Promise((r) => setTimeout(r, 2));
        span.addEvent("quantize", { [attr.KV_TOKENS]: 16 });
      });
      getMetrics().encodeDuration.record(0.002, { [attr.LAYER]: "0-3" });
      msg.respond("ok", { headers: injectContext() });
    }, { attrs: { [attr.NATS_SUBJECT]: msg.subject } });
  }
  await nc.drain();
} else if (mode === "caller") {
  const nc = await connect({ servers: natsUrl });
  await withSpan("gateway", { [attr.REQUEST_ID]: "req-1", [attr.MODEL]: "stories260K" }, async (root) => {
    console.log(root.spanContext().traceId);
    await withSpan("prefill.request", { [attr.NATS_SUBJECT]: SUBJECT }, async () => {
      const reply = await nc.request(SUBJECT, "hello", { headers: injectContext(), timeout: 5000 });
      if (reply.string() !== "ok") throw new Error("bad reply");
    }, { kind: SpanKind.CLIENT });
    try {
      withSpan("decode-kv", {}, () => {
        throw new KvrelayError("corrupt_bundle", "checksum mismatch");
      });
    } catch { /* recorded on the span */ }
  });
  await nc.drain();
} else if (mode === "serve") {
  const app = new Hono();
  app.use(honoRouteName());
  app.get(
    "/v1/items/:id",
    (c) => withSpan("lookup", { [attr.REQUEST_ID]: c.req.param("id") }, () => c.text("ok")),
  );
  app.get("/active", (c) => c.text(trace.getActiveSpan() ? "span" : "none"));
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  onShutdown(() => server.shutdown());
  installShutdown();
  console.log(`ready ${server.addr.port}`);
  await server.finished;
} else {
  console.error(`unknown mode '${mode}'`);
  Deno.exit(2);
}
