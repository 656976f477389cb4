/**
 * Middleware that counts every API request by route pattern and final HTTP status in
 * `kvrelay_requests_total` (errors included: the error mapper has set the status by then).
 * @module
 */
import type { Context, Next } from "hono";
import { endpointRoute } from "../../../shared/telemetry/hono_route_name.ts";
import type { GatewayMetrics } from "./gateway_metrics.ts";

/** Counts each request that passes through it on `metrics.requests`. */
export function countRequests(metrics: GatewayMetrics) {
  return async function countRequests(c: Context, next: Next): Promise<void> {
    try {
      await next();
    } finally {
      // the route pattern (a few values), never the raw path
      metrics.requests.inc({ endpoint: endpointRoute(c) ?? "unmatched", status: String(c.res.status) });
    }
  };
}
