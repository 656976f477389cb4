import { assertEquals, assertThrows } from "@std/assert";
import { decodeTraceRequestProtobuf } from "./decode_protobuf.ts";
import { ProtobufError } from "./protobuf.ts";
import { bytes, double, fixed64, hexBytes, kv, len, str, uint } from "./testdata/proto_writer.ts";

const TRACE = "0af7651916cd43dd8448eb211c80319c";

function request(...spans: number[][]): Uint8Array {
  const resource = len(1, kv(1, "service.name", str(1, "compression")));
  const scope = len(1, str(1, "kvrelay"), str(2, "1.0"));
  return bytes(len(1, len(2, scope, ...spans.map((s) => len(2, s))), resource)); // resource after scopes
}

const rootSpan = [
  ...len(1, hexBytes(TRACE)),
  ...len(2, hexBytes("00f067aa0ba902b7")),
  ...str(5, "encode"),
  ...uint(6, 1),
  ...fixed64(7, 1_700_000_000_000_000_000n),
  ...fixed64(8, 1_700_000_000_002_500_000n),
  ...kv(9, "kvrelay.layer", str(1, "0-3")),
  ...kv(9, "kvrelay.kv.bytes_raw", uint(3, 4096)),
  ...kv(9, "neg", uint(3, -5)),
  ...kv(9, "big", uint(3, 2n ** 62n)),
  ...kv(9, "kvrelay.kv.ratio", double(4, 3.75)),
  ...kv(9, "ok", uint(2, 1)),
  ...kv(9, "arr", len(5, len(1, str(1, "a")), len(1, uint(3, 2)))),
  ...kv(9, "map", len(6, kv(1, "x", str(1, "y")))),
  ...len(11, fixed64(1, 1_700_000_000_001_000_000n), str(2, "quantize"), kv(3, "n", uint(3, 7))),
  ...len(15, str(2, "boom"), uint(3, 2)),
  ...uint(16, 0x101), // flags: unknown here, skipped
  ...uint(99, 1), // a future field
];

const childSpan = [
  ...len(1, hexBytes(TRACE)),
  ...len(2, hexBytes("1111111111111111")),
  ...len(4, hexBytes("00f067aa0ba902b7")),
  ...str(5, "quantize"),
  ...uint(6, 2),
];

Deno.test("decodeTraceRequestProtobuf() reads spans, attributes of every type, events and status", () => {
  const [root, child] = decodeTraceRequestProtobuf(request(rootSpan, childSpan));
  assertEquals(root, {
    traceId: TRACE,
    spanId: "00f067aa0ba902b7",
    name: "encode",
    kind: "internal",
    startTimeUnixNano: "1700000000000000000",
    endTimeUnixNano: "1700000000002500000",
    durationMs: 2.5,
    service: "compression",
    scope: "kvrelay",
    attributes: {
      "kvrelay.layer": "0-3",
      "kvrelay.kv.bytes_raw": 4096,
      neg: -5,
      big: String(2n ** 62n),
      "kvrelay.kv.ratio": 3.75,
      ok: true,
      arr: ["a", 2],
      map: { x: "y" },
    },
    status: { code: "error", message: "boom" },
    events: [{ name: "quantize", timeUnixNano: "1700000000001000000", attributes: { n: 7 } }],
  });
  assertEquals([child.parentSpanId, child.kind, child.name], ["00f067aa0ba902b7", "server", "quantize"]);
});

Deno.test("decodeTraceRequestProtobuf() reads an empty request as no spans", () => {
  assertEquals(decodeTraceRequestProtobuf(new Uint8Array(0)), []);
});

Deno.test("decodeTraceRequestProtobuf() rejects truncated and mistyped streams with ProtobufError", () => {
  const good = request(rootSpan);
  for (const cut of [1, 5, 17, good.length - 1]) {
    assertThrows(() => decodeTraceRequestProtobuf(good.subarray(0, cut)), ProtobufError);
  }
  assertThrows(() => decodeTraceRequestProtobuf(bytes(uint(1, 5))), ProtobufError, "wire type");
  assertThrows(() => decodeTraceRequestProtobuf(bytes([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f])), ProtobufError);
  assertThrows(() => decodeTraceRequestProtobuf(bytes([0x0b])), ProtobufError, "wire type 3");
  const shortId = [...len(1, hexBytes("0af7")), ...len(2, hexBytes("00f067aa0ba902b7"))];
  assertThrows(() => decodeTraceRequestProtobuf(request(shortId)), ProtobufError, "trace_id");
  let deep = str(1, "leaf");
  for (let i = 0; i < 40; i++) deep = len(5, len(1, deep));
  assertThrows(
    () => decodeTraceRequestProtobuf(request([...rootSpan, ...kv(9, "deep", deep)])),
    ProtobufError,
  );
});

Deno.test("decodeTraceRequestProtobuf() throws only ProtobufError on random bytes", () => {
  let seed = 7;
  const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
  const good = request(rootSpan, childSpan);
  for (let i = 0; i < 2000; i++) {
    const b = i % 2 ? Uint8Array.from({ length: rand() }, rand) : good.map((x) => (rand() < 8 ? rand() : x));
    try {
      decodeTraceRequestProtobuf(b);
    } catch (err) {
      if (!(err instanceof ProtobufError)) throw err;
    }
  }
});
