/**
 * Hono middleware that names Deno's HTTP server span by route. Deno's auto-instrumented
 * `Deno.serve` span is called only by the method (`POST`); after the handler ran, this
 * renames it `POST /v1/chat/completions` (the matched route pattern, `/v1/items/:id`, never
 * the raw path) and sets `http.route`. A no-op without an active span.
 * @module
 */
import { trace } from "@opentelemetry/api";
import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes, routePath } from "hono/route";

/** Options of {@linkcode honoRouteName}. */
export interface RouteNameOptions {
  /** Span name for requests that matched no route; left as is unless told. */
  unmatchedName?: string;
}

/**
 * @example
 * ```ts
 * const app = new Hono();
 * app.use(honoRouteName());
 * app.post("/v1/chat/completions", handler);
 * Deno.serve(app.fetch);
 * ```
 */
export function honoRouteName(options: RouteNameOptions = {}): MiddlewareHandler {
  return async function routeName(c, next) {
    try {
      await next();
    } finally {
      const span = trace.getActiveSpan();
      if (span) {
        const route = endpointRoute(c);
        if (route) {
          span.updateName(`${c.req.method} ${route}`);
          span.setAttribute("http.route", route);
        } else if (options.unmatchedName) {
          span.updateName(options.unmatchedName);
        }
      }
    }
  };
}

/** The pattern of the last matched endpoint (not `use()` middleware), else the current route's. */
export function endpointRoute(c: Context): string | undefined {
  const routes = matchedRoutes(c);
  for (let i = routes.length - 1; i >= 0; i--) {
    if (routes[i].method !== "ALL" && !isWildcard(routes[i].path)) return routes[i].path;
  }
  const current = routePath(c);
  return isWildcard(current) ? undefined : current;
}

function isWildcard(path: string): boolean {
  return path === "" || path === "*" || path === "/*";
}
