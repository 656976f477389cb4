/**
 * An OTLP/HTTP receiver: `POST /v1/traces` in `application/x-protobuf` or
 * `application/json` (gzip allowed), decoded to flat spans and handed to `onSpans`.
 * `/v1/metrics` and `/v1/logs` are accepted and dropped, so an exporter configured with one
 * endpoint for all signals stays quiet. A malformed body is a 400, never a crash.
 * With `lookUp`, `GET /api/traces/<trace id>` answers the stored spans of one trace as JSON
 * (`{ traceId, spans }`; 404 when none), which the gateway's dashboard draws.
 * @module
 */
import { decodeTraceRequestJson } from "./decode_json.ts";
import { decodeTraceRequestProtobuf } from "./decode_protobuf.ts";
import type { FlatSpan } from "./span.ts";

/** Largest request body accepted (after gzip), bytes, unless told. */
export const DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024;

/** Options of {@linkcode createOtlpHandler}. */
export interface OtlpHandlerOptions {
  /** Receives every decoded batch; a rejection turns into a 503 (the exporter retries). */
  onSpans: (spans: FlatSpan[]) => void | Promise<void>;
  /** The stored spans of one trace, for `GET /api/traces/<id>`; absent: no look-ups. */
  lookUp?: (traceId: string) => Promise<FlatSpan[]>;
  maxBodyBytes?: number;
}

const TRACE_PATH = /^\/api\/traces\/([0-9a-f]{32})$/;

const IGNORED_PATHS = new Set(["/v1/metrics", "/v1/logs"]);

/**
 * A fetch handler for the OTLP/HTTP trace endpoint.
 *
 * @example
 * ```ts
 * const spans: FlatSpan[] = [];
 * const handler = createOtlpHandler({ onSpans: (s) => void spans.push(...s) });
 * Deno.serve({ port: 4318 }, handler);
 * ```
 */
export function createOtlpHandler(options: OtlpHandlerOptions): (req: Request) => Promise<Response> {
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  return async function otlpHandler(req) {
    const path = new URL(req.url).pathname;
    const wanted = TRACE_PATH.exec(path);
    if (wanted && options.lookUp) {
      if (req.method !== "GET") return text(405, "method not allowed");
      return await lookUpTrace(options.lookUp, wanted[1]);
    }
    if (path !== "/v1/traces" && !IGNORED_PATHS.has(path)) return text(404, "not found");
    if (req.method !== "POST") return text(405, "method not allowed");
    const type = (req.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
    const isJson = type === "application/json";
    const isProto = type === "application/x-protobuf" || type === "application/protobuf";
    if (!isJson && !isProto) return text(415, `unsupported content-type '${type}'`);
    let body: Uint8Array;
    try {
      body = await readBody(req, maxBody);
    } catch (err) {
      if (err instanceof RangeError) return text(413, err.message);
      return text(400, `unreadable body: ${(err as Error).message}`);
    }
    if (IGNORED_PATHS.has(path)) return ok(isJson);
    let spans: FlatSpan[];
    try {
      spans = isJson
        ? decodeTraceRequestJson(JSON.parse(new TextDecoder().decode(body)))
        : decodeTraceRequestProtobuf(body);
    } catch (err) {
      return text(400, `malformed ExportTraceServiceRequest: ${(err as Error).message}`);
    }
    try {
      await options.onSpans(spans);
    } catch (err) {
      return text(503, `could not store spans: ${(err as Error).message}`);
    }
    return ok(isJson);
  };
}

/** Options of {@linkcode startOtlpReceiver}. */
export interface OtlpReceiverOptions extends OtlpHandlerOptions {
  hostname?: string;
  /** 0 (any free port) unless told. */
  port?: number;
}

/** A running receiver. */
export interface OtlpReceiver {
  readonly hostname: string;
  readonly port: number;
  /** `http://host:port`, the value for `OTEL_EXPORTER_OTLP_ENDPOINT`. */
  readonly endpoint: string;
  close(): Promise<void>;
}

/**
 * Serves {@linkcode createOtlpHandler} on `hostname:port`.
 *
 * @example
 * ```ts
 * const rx = startOtlpReceiver({ port: 0, onSpans: (s) => store.append(s) });
 * // child env: OTEL_EXPORTER_OTLP_ENDPOINT=rx.endpoint
 * await rx.close();
 * ```
 */
export function startOtlpReceiver(options: OtlpReceiverOptions): OtlpReceiver {
  const hostname = options.hostname ?? "127.0.0.1";
  const server = Deno.serve(
    { hostname, port: options.port ?? 0, onListen() {} },
    createOtlpHandler(options),
  );
  const port = server.addr.port;
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  return { hostname, port, endpoint: `http://${host}:${port}`, close: () => server.shutdown() };
}

async function readBody(req: Request, maxBody: number): Promise<Uint8Array> {
  if (!req.body) return new Uint8Array(0);
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > maxBody) throw new RangeError(`body of ${declared} bytes exceeds ${maxBody}`);
  const encoding = (req.headers.get("content-encoding") ?? "identity").toLowerCase();
  let stream: ReadableStream<Uint8Array> = req.body;
  if (encoding === "gzip") {
    stream = stream.pipeThrough(
      new DecompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>,
    );
  } else if (encoding !== "identity") throw new TypeError(`unsupported content-encoding '${encoding}'`);
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += chunk.byteLength;
    if (size > maxBody) throw new RangeError(`body exceeds ${maxBody} bytes`);
    parts.push(chunk);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

async function lookUpTrace(lookUp: (traceId: string) => Promise<FlatSpan[]>, traceId: string) {
  let spans: FlatSpan[];
  try {
    spans = await lookUp(traceId);
  } catch (err) {
    return text(503, `could not read spans: ${(err as Error).message}`);
  }
  if (spans.length === 0) return text(404, `no spans of trace ${traceId} stored`);
  return Response.json({ traceId, spans });
}

/** An empty `Export*ServiceResponse`: zero bytes in protobuf, `{}` in JSON. */
function ok(json: boolean): Response {
  return json
    ? new Response("{}", { headers: { "content-type": "application/json" } })
    : new Response(new Uint8Array(0), { headers: { "content-type": "application/x-protobuf" } });
}

function text(status: number, message: string): Response {
  return new Response(message + "\n", { status, headers: { "content-type": "text/plain; charset=utf-8" } });
}
