/**
 * The gateway's operator surface, outside /v1 (no API key, as /healthz; keep it on a private
 * network): `GET /metrics` (Prometheus text of the gateway merged with every service's report
 * over NATS), `GET /dashboard` (one static page and its two scripts, polling the routes here),
 * `GET /dashboard/api/requests` (the last completions with their `usage.kv`) and
 * `GET /dashboard/api/traces[/<trace id>]` (whether the bundled trace receiver runs; one
 * trace's spans from it).
 * @module
 */
import type { Hono } from "hono";
import { KvrelayError } from "../../../shared/errors.ts";
import { exposition, EXPOSITION_CONTENT_TYPE, type ServiceReports } from "../../../shared/metrics/mod.ts";
import type { GatewayMetrics } from "./gateway_metrics.ts";

export interface ObservabilityOptions {
  metrics: GatewayMetrics;
  /** The services' metrics over NATS; absent: the gateway's own only. */
  reports?: ServiceReports;
  /** Base URL of the bundled trace receiver (Config.traceReceiver); absent: tracing is off. */
  traceReceiver?: string;
}

const DASHBOARD_FILES: Record<string, string> = {
  "/dashboard": "index.html",
  "/dashboard/app.js": "app.js",
  "/dashboard/view.js": "view.js",
};
const TRACE_ID = /^[0-9a-f]{32}$/;
const RECEIVER_WAIT_MS = 2000;

/** Adds the routes above to `app`. */
export function observabilityRoutes(app: Hono, opts: ObservabilityOptions): void {
  app.get("/metrics", async (c) => {
    const text = await exposition(opts.metrics.registry, opts.reports ? await opts.reports.collect() : []);
    return c.body(text, 200, { "content-type": EXPOSITION_CONTENT_TYPE });
  });
  const files = new Map<string, Promise<string>>();
  for (const [path, file] of Object.entries(DASHBOARD_FILES)) {
    app.get(path, async (c) => {
      if (!files.has(file)) {
        files.set(file, Deno.readTextFile(new URL(`../dashboard/${file}`, import.meta.url)));
      }
      const type = file.endsWith(".js") ? "text/javascript; charset=utf-8" : "text/html; charset=utf-8";
      return c.body(await files.get(file)!, 200, { "content-type": type, "cache-control": "no-cache" });
    });
  }
  app.get("/dashboard/api/requests", (c) => c.json({ requests: opts.metrics.recent.list() }));
  app.get("/dashboard/api/traces", async (c) => {
    const receiver = opts.traceReceiver;
    if (!receiver) {
      return c.json({ receiver: null, running: false, why: "tracing is off (OTEL_DENO=true is not set)" });
    }
    try {
      // any well-formed id: the bundled receiver answers 404 for an unknown trace
      const r = await fetch(`${receiver}/api/traces/${"0".repeat(32)}`, {
        signal: AbortSignal.timeout(RECEIVER_WAIT_MS),
      });
      await r.body?.cancel();
      const running = r.status === 404 || r.ok;
      return c.json({ receiver, running, why: running ? null : `${receiver} answered ${r.status}` });
    } catch (err) {
      return c.json({
        receiver,
        running: false,
        why: `the trace receiver at ${receiver} is not running (${(err as Error).message})`,
      });
    }
  });
  app.get("/dashboard/api/traces/:id", async (c) => {
    const id = c.req.param("id");
    if (!TRACE_ID.test(id)) throw new KvrelayError("bad_request", "a trace id is 32 lowercase hex digits");
    const receiver = opts.traceReceiver;
    if (!receiver) throw new KvrelayError("unavailable", "tracing is off (OTEL_DENO=true is not set)");
    let r: Response;
    try {
      r = await fetch(`${receiver}/api/traces/${id}`, { signal: AbortSignal.timeout(RECEIVER_WAIT_MS) });
    } catch (err) {
      throw new KvrelayError(
        "unavailable",
        `the trace receiver at ${receiver} is not running (${(err as Error).message})`,
      );
    }
    if (r.status === 404) {
      await r.body?.cancel();
      throw new KvrelayError(
        "not_found",
        `the trace receiver has no spans of ${id} (yet: spans arrive in batches)`,
      );
    }
    if (!r.ok) {
      await r.body?.cancel();
      throw new KvrelayError("unavailable", `the trace receiver at ${receiver} answered ${r.status}`);
    }
    return c.json(await r.json());
  });
}
