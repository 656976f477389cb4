/**
 * Decodes an OTLP/JSON `ExportTraceServiceRequest` into flat spans. Follows the OTLP JSON
 * mapping: lowerCamelCase keys, trace and span ids as hex, 64-bit integers as strings or
 * numbers, enums as integers. Ids in base64 (some older exporters) are accepted too. A
 * body of the wrong shape throws `TypeError`.
 * @module
 */
import {
  type AttrValue,
  type FlatSpan,
  nanosDiffMs,
  SPAN_KINDS,
  type SpanEvent,
  STATUS_CODES,
} from "./span.ts";

const MAX_VALUE_DEPTH = 16;

type Json = Record<string, unknown>;

/** Decodes the parsed JSON body of `POST /v1/traces`. */
export function decodeTraceRequestJson(body: unknown): FlatSpan[] {
  const out: FlatSpan[] = [];
  for (const rs of list(obj(body, "request").resourceSpans, "resourceSpans")) {
    const resource = rs === null || typeof rs !== "object" ? {} : obj(rs, "resourceSpans[]");
    const resAttrs = attributes((resource.resource as Json | undefined)?.attributes, 0);
    const service = typeof resAttrs["service.name"] === "string"
      ? resAttrs["service.name"]
      : "unknown_service";
    for (const ss of list(resource.scopeSpans, "scopeSpans")) {
      const scopeSpans = obj(ss, "scopeSpans[]");
      const scopeName = (scopeSpans.scope as Json | undefined)?.name;
      const scope = typeof scopeName === "string" ? scopeName : "";
      for (const s of list(scopeSpans.spans, "spans")) out.push(span(obj(s, "span"), service, scope));
    }
  }
  return out;
}

function span(s: Json, service: string, scope: string): FlatSpan {
  const traceId = id(s.traceId, 16, "traceId");
  const spanId = id(s.spanId, 8, "spanId");
  const parent = s.parentSpanId === undefined || s.parentSpanId === ""
    ? ""
    : id(s.parentSpanId, 8, "parentSpanId");
  const start = nanos(s.startTimeUnixNano, "startTimeUnixNano");
  const end = nanos(s.endTimeUnixNano, "endTimeUnixNano");
  const status = s.status === undefined ? {} : obj(s.status, "status");
  const events: SpanEvent[] = list(s.events, "events").map((e) => {
    const ev = obj(e, "event");
    return {
      name: str(ev.name, "event.name"),
      timeUnixNano: nanos(ev.timeUnixNano, "event.timeUnixNano"),
      attributes: attributes(ev.attributes, 0),
    };
  });
  const links = list(s.links, "links").map((l) => {
    const lk = obj(l, "link");
    return { traceId: id(lk.traceId, 16, "link.traceId"), spanId: id(lk.spanId, 8, "link.spanId") };
  });
  const out: FlatSpan = {
    traceId,
    spanId,
    name: str(s.name, "name"),
    kind: SPAN_KINDS[enumValue(s.kind, "kind")] ?? "unspecified",
    startTimeUnixNano: start,
    endTimeUnixNano: end,
    durationMs: nanosDiffMs(start, end),
    service,
    scope,
    attributes: attributes(s.attributes, 0),
    status: { code: STATUS_CODES[enumValue(status.code, "status.code")] ?? "unset" },
    events,
  };
  if (parent) out.parentSpanId = parent;
  if (typeof status.message === "string" && status.message) out.status.message = status.message;
  if (links.length) out.links = links;
  return out;
}

function attributes(v: unknown, depth: number): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  for (const kv of list(v, "attributes")) {
    const o = obj(kv, "attribute");
    out[str(o.key, "attribute.key")] = anyValue(o.value, depth);
  }
  return out;
}

function anyValue(v: unknown, depth: number): AttrValue {
  if (depth > MAX_VALUE_DEPTH) throw new TypeError("attribute value nested too deep");
  if (v === undefined || v === null) return null;
  const o = obj(v, "AnyValue");
  if ("stringValue" in o) return str(o.stringValue, "stringValue");
  if ("boolValue" in o) {
    if (typeof o.boolValue !== "boolean") throw new TypeError("boolValue is not a boolean");
    return o.boolValue;
  }
  if ("intValue" in o) {
    const n = integer(o.intValue, "intValue");
    return Number.isSafeInteger(Number(n)) ? Number(n) : n;
  }
  if ("doubleValue" in o) {
    const d = o.doubleValue;
    if (typeof d === "number") return d;
    if (d === "NaN" || d === "Infinity" || d === "-Infinity") return String(d);
    throw new TypeError("doubleValue is not a number");
  }
  if ("arrayValue" in o) {
    const a = obj(o.arrayValue, "arrayValue");
    return list(a.values, "arrayValue.values").map((x) => anyValue(x, depth + 1));
  }
  if ("kvlistValue" in o) return attributes(obj(o.kvlistValue, "kvlistValue").values, depth + 1);
  if ("bytesValue" in o) return str(o.bytesValue, "bytesValue");
  return null;
}

function obj(v: unknown, what: string): Json {
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    throw new TypeError(`${what} is not an object`);
  }
  return v as Json;
}

function list(v: unknown, what: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new TypeError(`${what} is not an array`);
  return v;
}

function str(v: unknown, what: string): string {
  if (v === undefined) return "";
  if (typeof v !== "string") throw new TypeError(`${what} is not a string`);
  return v;
}

function enumValue(v: unknown, what: string): number {
  if (v === undefined) return 0;
  if (typeof v !== "number" || !Number.isInteger(v)) throw new TypeError(`${what} is not an integer`);
  return v;
}

/** A decimal integer given as a JSON number or string, as a canonical string. */
function integer(v: unknown, what: string): string {
  if (typeof v === "number" && Number.isInteger(v)) return String(v);
  if (typeof v === "string" && /^-?\d{1,20}$/.test(v)) return BigInt(v).toString();
  throw new TypeError(`${what} is not an integer`);
}

function nanos(v: unknown, what: string): string {
  if (v === undefined) return "0";
  const s = integer(v, what);
  if (s.startsWith("-")) throw new TypeError(`${what} is negative`);
  return s;
}

/** A trace or span id of `bytes` bytes, hex (the OTLP/JSON form) or base64, as lowercase hex. */
function id(v: unknown, bytes: number, what: string): string {
  if (typeof v !== "string") throw new TypeError(`${what} is not a string`);
  if (v.length === bytes * 2 && /^[0-9a-fA-F]+$/.test(v)) return v.toLowerCase();
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(v)) {
    let raw: string;
    try {
      raw = atob(v);
    } catch {
      throw new TypeError(`${what} is neither hex nor base64`);
    }
    if (raw.length === bytes) {
      let hex = "";
      for (let i = 0; i < raw.length; i++) hex += raw.charCodeAt(i).toString(16).padStart(2, "0");
      return hex;
    }
  }
  throw new TypeError(`${what} is not a ${bytes}-byte id`);
}
