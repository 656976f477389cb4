/**
 * The project's small OTLP/HTTP trace receiver: decoders (protobuf and JSON), a fetch
 * handler and server, the JSONL span store, and the span-tree builder and printer used by
 * `deno task kvrelay traces`.
 * @module
 */
export type { AttrValue, FlatSpan, SpanEvent, SpanKindName, SpanLink, StatusName } from "./span.ts";
export { ProtobufError } from "./protobuf.ts";
export { decodeTraceRequestProtobuf } from "./decode_protobuf.ts";
export { decodeTraceRequestJson } from "./decode_json.ts";
export {
  createOtlpHandler,
  DEFAULT_MAX_BODY_BYTES,
  type OtlpHandlerOptions,
  type OtlpReceiver,
  type OtlpReceiverOptions,
  startOtlpReceiver,
} from "./receiver.ts";
export { openSpanStore, readSpans, type SpanStore } from "./store.ts";
export { buildSpanTree, type FormatOptions, formatSpanTree, selectTrace, type SpanNode } from "./tree.ts";
