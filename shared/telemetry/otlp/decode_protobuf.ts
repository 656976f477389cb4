/**
 * Decodes an OTLP `ExportTraceServiceRequest` (opentelemetry-proto `collector/trace/v1`)
 * from protobuf bytes into flat spans. Unknown fields are skipped, as protobuf requires;
 * wrong wire types and truncation throw `ProtobufError`.
 *
 * Field numbers read here:
 * - ExportTraceServiceRequest: 1 resource_spans
 * - ResourceSpans: 1 resource, 2 scope_spans · Resource: 1 attributes
 * - ScopeSpans: 1 scope, 2 spans · InstrumentationScope: 1 name
 * - Span: 1 trace_id, 2 span_id, 4 parent_span_id, 5 name, 6 kind, 7 start (fixed64),
 *   8 end (fixed64), 9 attributes, 11 events, 13 links, 15 status
 * - Event: 1 time (fixed64), 2 name, 3 attributes · Link: 1 trace_id, 2 span_id
 * - Status: 2 message, 3 code · KeyValue: 1 key, 2 value
 * - AnyValue: 1 string, 2 bool, 3 int, 4 double, 5 array, 6 kvlist, 7 bytes
 * @module
 */
import { ProtobufError, ProtoReader, WIRE_I64, WIRE_LEN, WIRE_VARINT } from "./protobuf.ts";
import {
  type AttrValue,
  type FlatSpan,
  nanosDiffMs,
  SPAN_KINDS,
  type SpanEvent,
  type SpanLink,
  STATUS_CODES,
} from "./span.ts";

/** Deepest nesting of array/kvlist attribute values accepted. */
const MAX_VALUE_DEPTH = 16;

/** Decodes an `ExportTraceServiceRequest`. */
export function decodeTraceRequestProtobuf(bytes: Uint8Array): FlatSpan[] {
  const r = new ProtoReader(bytes);
  const out: FlatSpan[] = [];
  while (!r.done()) {
    const f = r.tag();
    if (f.no === 1) {
      r.expect(f, WIRE_LEN);
      readResourceSpans(r.message(), out);
    } else r.skip(f.wire);
  }
  return out;
}

function readResourceSpans(r: ProtoReader, out: FlatSpan[]): void {
  let resourceAttrs: Record<string, AttrValue> = {};
  const scopes: ProtoReader[] = [];
  while (!r.done()) {
    const f = r.tag();
    if (f.no === 1) {
      r.expect(f, WIRE_LEN);
      resourceAttrs = readAttributesOf(r.message(), 1);
    } else if (f.no === 2) {
      r.expect(f, WIRE_LEN);
      scopes.push(r.message()); // the resource may come after its scopes: read them last
    } else r.skip(f.wire);
  }
  const service = typeof resourceAttrs["service.name"] === "string"
    ? resourceAttrs["service.name"] as string
    : "unknown_service";
  for (const s of scopes) readScopeSpans(s, service, out);
}

function readScopeSpans(r: ProtoReader, service: string, out: FlatSpan[]): void {
  let scope = "";
  const spans: ProtoReader[] = [];
  while (!r.done()) {
    const f = r.tag();
    if (f.no === 1) {
      r.expect(f, WIRE_LEN);
      const s = r.message();
      while (!s.done()) {
        const g = s.tag();
        if (g.no === 1) {
          s.expect(g, WIRE_LEN);
          scope = s.string();
        } else s.skip(g.wire);
      }
    } else if (f.no === 2) {
      r.expect(f, WIRE_LEN);
      spans.push(r.message());
    } else r.skip(f.wire);
  }
  for (const s of spans) out.push(readSpan(s, service, scope));
}

function readSpan(r: ProtoReader, service: string, scope: string): FlatSpan {
  const start = r.pos;
  let traceId = "", spanId = "", parentSpanId = "", name = "";
  let kind = 0, startNs = 0n, endNs = 0n, statusCode = 0;
  let statusMessage: string | undefined;
  const attributes: Record<string, AttrValue> = {};
  const events: SpanEvent[] = [];
  const links: SpanLink[] = [];
  while (!r.done()) {
    const f = r.tag();
    switch (f.no) {
      case 1:
        r.expect(f, WIRE_LEN);
        traceId = hex(r.bytes());
        break;
      case 2:
        r.expect(f, WIRE_LEN);
        spanId = hex(r.bytes());
        break;
      case 4:
        r.expect(f, WIRE_LEN);
        parentSpanId = hex(r.bytes());
        break;
      case 5:
        r.expect(f, WIRE_LEN);
        name = r.string();
        break;
      case 6:
        r.expect(f, WIRE_VARINT);
        kind = r.uint32();
        break;
      case 7:
        r.expect(f, WIRE_I64);
        startNs = r.fixed64();
        break;
      case 8:
        r.expect(f, WIRE_I64);
        endNs = r.fixed64();
        break;
      case 9: {
        r.expect(f, WIRE_LEN);
        const [k, v] = readKeyValue(r.message(), 0);
        attributes[k] = v;
        break;
      }
      case 11:
        r.expect(f, WIRE_LEN);
        events.push(readEvent(r.message()));
        break;
      case 13:
        r.expect(f, WIRE_LEN);
        links.push(readLink(r.message()));
        break;
      case 15: {
        r.expect(f, WIRE_LEN);
        const s = r.message();
        while (!s.done()) {
          const g = s.tag();
          if (g.no === 2) {
            s.expect(g, WIRE_LEN);
            statusMessage = s.string();
          } else if (g.no === 3) {
            s.expect(g, WIRE_VARINT);
            statusCode = s.uint32();
          } else s.skip(g.wire);
        }
        break;
      }
      default:
        r.skip(f.wire);
    }
  }
  if (traceId.length !== 32 || spanId.length !== 16) {
    throw new ProtobufError(`span '${name}' lacks a 16-byte trace_id or 8-byte span_id`, start);
  }
  const span: FlatSpan = {
    traceId,
    spanId,
    name,
    kind: SPAN_KINDS[kind] ?? "unspecified",
    startTimeUnixNano: startNs.toString(),
    endTimeUnixNano: endNs.toString(),
    durationMs: nanosDiffMs(startNs.toString(), endNs.toString()),
    service,
    scope,
    attributes,
    status: { code: STATUS_CODES[statusCode] ?? "unset" },
    events,
  };
  if (parentSpanId) span.parentSpanId = parentSpanId;
  if (statusMessage) span.status.message = statusMessage;
  if (links.length) span.links = links;
  return span;
}

function readEvent(r: ProtoReader): SpanEvent {
  let timeNs = 0n, name = "";
  const attributes: Record<string, AttrValue> = {};
  while (!r.done()) {
    const f = r.tag();
    if (f.no === 1) {
      r.expect(f, WIRE_I64);
      timeNs = r.fixed64();
    } else if (f.no === 2) {
      r.expect(f, WIRE_LEN);
      name = r.string();
    } else if (f.no === 3) {
      r.expect(f, WIRE_LEN);
      const [k, v] = readKeyValue(r.message(), 0);
      attributes[k] = v;
    } else r.skip(f.wire);
  }
  return { name, timeUnixNano: timeNs.toString(), attributes };
}

function readLink(r: ProtoReader): SpanLink {
  let traceId = "", spanId = "";
  while (!r.done()) {
    const f = r.tag();
    if (f.no === 1) {
      r.expect(f, WIRE_LEN);
      traceId = hex(r.bytes());
    } else if (f.no === 2) {
      r.expect(f, WIRE_LEN);
      spanId = hex(r.bytes());
    } else r.skip(f.wire);
  }
  return { traceId, spanId };
}

/** Reads the repeated KeyValue field `fieldNo` of a message (Resource, KeyValueList). */
function readAttributesOf(r: ProtoReader, fieldNo: number, depth = 0): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  while (!r.done()) {
    const f = r.tag();
    if (f.no === fieldNo) {
      r.expect(f, WIRE_LEN);
      const [k, v] = readKeyValue(r.message(), depth);
      out[k] = v;
    } else r.skip(f.wire);
  }
  return out;
}

function readKeyValue(r: ProtoReader, depth: number): [string, AttrValue] {
  let key = "";
  let value: AttrValue = null;
  while (!r.done()) {
    const f = r.tag();
    if (f.no === 1) {
      r.expect(f, WIRE_LEN);
      key = r.string();
    } else if (f.no === 2) {
      r.expect(f, WIRE_LEN);
      value = readAnyValue(r.message(), depth);
    } else r.skip(f.wire);
  }
  return [key, value];
}

function readAnyValue(r: ProtoReader, depth: number): AttrValue {
  if (depth > MAX_VALUE_DEPTH) throw new ProtobufError("attribute value nested too deep", r.pos);
  let value: AttrValue = null;
  while (!r.done()) {
    const f = r.tag();
    switch (f.no) {
      case 1:
        r.expect(f, WIRE_LEN);
        value = r.string();
        break;
      case 2:
        r.expect(f, WIRE_VARINT);
        value = r.varint() !== 0n;
        break;
      case 3: {
        r.expect(f, WIRE_VARINT);
        const n = BigInt.asIntN(64, r.varint());
        value = n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER)
          ? Number(n)
          : n.toString();
        break;
      }
      case 4:
        r.expect(f, WIRE_I64);
        value = r.double();
        break;
      case 5: {
        r.expect(f, WIRE_LEN);
        const a = r.message();
        const items: AttrValue[] = [];
        while (!a.done()) {
          const g = a.tag();
          if (g.no === 1) {
            a.expect(g, WIRE_LEN);
            items.push(readAnyValue(a.message(), depth + 1));
          } else a.skip(g.wire);
        }
        value = items;
        break;
      }
      case 6:
        r.expect(f, WIRE_LEN);
        value = readAttributesOf(r.message(), 1, depth + 1);
        break;
      case 7:
        r.expect(f, WIRE_LEN);
        value = base64(r.bytes());
        break;
      default:
        r.skip(f.wire);
    }
  }
  return value;
}

function hex(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

function base64(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s);
}
