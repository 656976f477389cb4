/**
 * The gateway's HTTP surface, composed top to bottom: route naming for traces, request counting
 * on /v1, API keys and tenants on /v1 (before anything reads a body), body limit, then the
 * routes; the completion routes pass admission control first (a 429 past `maxInflight`) and run
 * on a metered backend. /metrics and /dashboard are outside /v1 (metrics/routes.ts). One error
 * mapper at the edge.
 * @module
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { KvrelayError } from "../../shared/errors.ts";
import type { KvSettings } from "../../shared/handoff/contract.ts";
import { honoRouteName } from "../../shared/telemetry/mod.ts";
import type { Backend } from "./backend.ts";
import { completionHandler } from "./completions.ts";
import { modelRoutes, TOKENIZER_PATHS, tokenizerRoutes } from "./tokenize.ts";
import { errorResponse } from "./openai_error.ts";
import { BATCH_FILES_PATH, type BatchRouteDeps, batchRoutes } from "./batches.ts";
import { apiKeyAuth } from "./middleware/api_key/index.ts";
import { admission } from "./middleware/admission/index.ts";
import { DEFAULTS } from "../../shared/config/mod.ts";
import {
  countRequests,
  GatewayMetrics,
  meteredBackend,
  type ObservabilityOptions,
  observabilityRoutes,
} from "./metrics/mod.ts";

export interface GatewayOptions {
  backend: Backend;
  kvDefaults: KvSettings;
  maxTokensLimit: number;
  maxBodyBytes: number;
  apiKeys: string[];
  /** Batch jobs on JetStream (OpenAI Files and Batches API); off when absent. */
  batch?: BatchRouteDeps;
  /** Completions at once before a 429 (default `DEFAULTS.maxInflight`; 0 = no limit). */
  maxInflight?: number;
  /** Keep-alive comments of a waiting stream, in ms (default `DEFAULTS.sseKeepAliveMs`). */
  sseKeepAliveMs?: number;
  /** Metrics, the services' reports and the trace receiver (default: own metrics only). */
  observability?: Partial<ObservabilityOptions>;
}

export function createApp(opts: GatewayOptions): Hono {
  const app = new Hono();
  app.use("*", honoRouteName());
  const metrics = opts.observability?.metrics ?? new GatewayMetrics();
  app.use("/v1/*", countRequests(metrics));
  app.use("/v1/*", apiKeyAuth({ keys: opts.apiKeys }));
  const requestBodyLimit = bodyLimit({
    maxSize: opts.maxBodyBytes,
    onError: () => {
      throw new KvrelayError("payload_too_large", `the request body exceeds ${opts.maxBodyBytes} bytes`);
    },
  });
  // File uploads carry their own, larger limit (batches.ts).
  app.use("/v1/*", (c, next) => c.req.path.startsWith(BATCH_FILES_PATH) ? next() : requestBodyLimit(c, next));
  for (const p of TOKENIZER_PATHS) app.use(p, apiKeyAuth({ keys: opts.apiKeys }), requestBodyLimit);

  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", async (c) => {
    const services = await opts.backend.ready();
    const ready = Object.values(services).every(Boolean);
    return c.json({ status: ready ? "ready" : "not_ready", services }, ready ? 200 : 503);
  });
  modelRoutes(app, opts.backend);
  tokenizerRoutes(app, opts.backend);
  observabilityRoutes(app, { ...opts.observability, metrics });
  const admit = admission({ maxInflight: opts.maxInflight ?? DEFAULTS.maxInflight });
  const metered = { ...opts, backend: meteredBackend(opts.backend, metrics) };
  app.post("/v1/completions", admit, completionHandler("text", metered));
  app.post("/v1/chat/completions", admit, completionHandler("chat", metered));
  if (opts.batch) batchRoutes(app, opts.batch);

  app.notFound((c) =>
    errorResponse(c, new KvrelayError("not_found", `no route for ${c.req.method} ${c.req.path}`))
  );
  app.onError((err, c) => {
    if (err instanceof HTTPException && !(err.cause instanceof KvrelayError)) {
      const code = err.status === 401 ? "unauthorized" : "bad_request";
      return errorResponse(c, new KvrelayError(code, err.message || "request rejected"));
    }
    return errorResponse(c, err);
  });
  return app;
}
