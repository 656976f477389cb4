/**
 * The flat span record the OTLP receiver stores (one JSON line each) and the tree printer
 * reads. Ids are lowercase hex; times are Unix nanoseconds as decimal strings (they do not
 * fit a JSON number); 64-bit integer attributes beyond 2^53 stay strings.
 * @module
 */

/** An attribute value as stored: OTLP `AnyValue` flattened to JSON. */
export type AttrValue = string | number | boolean | null | AttrValue[] | { [key: string]: AttrValue };

export type SpanKindName = "unspecified" | "internal" | "server" | "client" | "producer" | "consumer";

export const SPAN_KINDS: readonly SpanKindName[] = [
  "unspecified",
  "internal",
  "server",
  "client",
  "producer",
  "consumer",
];

export type StatusName = "unset" | "ok" | "error";

export const STATUS_CODES: readonly StatusName[] = ["unset", "ok", "error"];

export interface SpanEvent {
  name: string;
  timeUnixNano: string;
  attributes: Record<string, AttrValue>;
}

export interface SpanLink {
  traceId: string;
  spanId: string;
}

export interface FlatSpan {
  traceId: string;
  spanId: string;
  /** Absent for a root span. */
  parentSpanId?: string;
  name: string;
  kind: SpanKindName;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  /** `end - start`, milliseconds. */
  durationMs: number;
  /** `service.name` of the resource ("unknown_service" when absent). */
  service: string;
  /** Instrumentation scope name (`kvrelay` for ours, `deno` for Deno's own spans). */
  scope: string;
  attributes: Record<string, AttrValue>;
  status: { code: StatusName; message?: string };
  events: SpanEvent[];
  links?: SpanLink[];
}

/** Milliseconds between two nanosecond timestamps given as decimal strings. */
export function nanosDiffMs(startNanos: string, endNanos: string): number {
  const d = BigInt(endNanos) - BigInt(startNanos);
  return Number(d / 1000n) / 1000;
}
