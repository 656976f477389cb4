import type { Context } from "hono";
import { KvrelayError } from "../../shared/errors.ts";

/**
 * OpenAI's error body: `{ error: { message, type, param, code } }`. A 429 or 503 says when to
 * try again in `Retry-After` (seconds).
 */
export function errorResponse(c: Context, err: unknown): Response {
  if (err instanceof KvrelayError) {
    const type = err.status === 429
      ? "requests"
      : err.status < 500
      ? "invalid_request_error"
      : err.status === 503
      ? "service_unavailable"
      : "server_error";
    const headers: Record<string, string> = {};
    if (err.status === 429 || err.status === 503) headers["Retry-After"] = String(err.retryAfterS ?? 1);
    return c.json(
      { error: { message: err.message, type, param: err.param ?? null, code: err.code } },
      err.status as 400,
      headers,
    );
  }
  console.error("[gateway] unexpected error", err);
  return c.json(
    { error: { message: "internal error", type: "server_error", param: null, code: "internal" } },
    500,
  );
}
