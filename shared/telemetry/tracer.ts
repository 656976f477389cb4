/**
 * The project tracer and `withSpan`, the one way service code opens a span. Without
 * `OTEL_DENO=true` the `@opentelemetry/api` calls are no-ops and `withSpan` just runs `fn`.
 * @module
 */
import { type Attributes, type Span, SpanKind, SpanStatusCode, trace, type Tracer } from "@opentelemetry/api";
import { ERROR_TYPE } from "./attributes.ts";

/** Instrumentation scope name of every kvrelay span. */
export const TRACER_NAME = "kvrelay";

/** The `kvrelay` tracer from the globally registered provider (Deno's under `OTEL_DENO=true`). */
export function getTracer(): Tracer {
  return trace.getTracer(TRACER_NAME);
}

/** Options of {@linkcode withSpan}. */
export interface WithSpanOptions {
  /** Span kind; `INTERNAL` unless told. */
  kind?: SpanKind;
}

/**
 * Runs `fn` inside a new active span named `name`, child of the active context. When `fn`
 * throws or rejects, the exception is recorded, the status set to ERROR with `error.type`
 * (the `code` of a `KvrelayError`, else the error's name), and the error rethrown. The span
 * always ends.
 *
 * @example
 * ```ts
 * const bytes = await withSpan("encode", { "kvrelay.layer": "0-3" }, async (span) => {
 *   const out = await encode(kv);
 *   span.setAttribute("kvrelay.kv.bytes_encoded", out.byteLength);
 *   return out;
 * });
 * ```
 */
export function withSpan<T>(
  name: string,
  attrs: Attributes,
  fn: (span: Span) => T,
  options: WithSpanOptions = {},
): T {
  return getTracer().startActiveSpan(
    name,
    { attributes: attrs, kind: options.kind ?? SpanKind.INTERNAL },
    (span) => {
      let result: T;
      try {
        result = fn(span);
      } catch (err) {
        failSpan(span, err);
        span.end();
        throw err;
      }
      if (result instanceof Promise) {
        return result.then(
          (v) => {
            span.end();
            return v;
          },
          (err) => {
            failSpan(span, err);
            span.end();
            throw err;
          },
        ) as T;
      }
      span.end();
      return result;
    },
  );
}

/** Records `err` on `span` (exception event, ERROR status, `error.type`). Leaves the span open. */
export function failSpan(span: Span, err: unknown): void {
  const e = err instanceof Error ? err : new Error(String(err));
  span.recordException(e);
  span.setAttribute(ERROR_TYPE, errorType(err));
  span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
}

function errorType(err: unknown): string {
  if (err && typeof err === "object") {
    const code = (err as { code?: unknown }).code;
    if (typeof code === "string" && code) return code;
    const name = (err as { name?: unknown }).name;
    if (typeof name === "string" && name) return name;
  }
  return "Error";
}
