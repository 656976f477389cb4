import { assertEquals, assertThrows } from "@std/assert";
import { decodeTraceRequestJson } from "./decode_json.ts";
import { JSON_REQUEST, TRACE } from "./testdata/json_request.ts";

Deno.test("decodeTraceRequestJson() reads the OTLP/JSON mapping", () => {
  const [span, child] = decodeTraceRequestJson(JSON_REQUEST);
  assertEquals(span, {
    traceId: TRACE,
    spanId: "00f067aa0ba902b7",
    name: "decode-kv",
    kind: "internal",
    startTimeUnixNano: "1700000000000000000",
    endTimeUnixNano: "1700000000001000000",
    durationMs: 1,
    service: "decode",
    scope: "kvrelay",
    attributes: {
      "kvrelay.kv.bytes_encoded": 1024,
      big: "9007199254740993",
      "kvrelay.kv.kept_fraction": 0.5,
      flag: false,
      arr: ["a", 3],
    },
    status: { code: "error", message: "corrupt" },
    events: [{ name: "exception", timeUnixNano: "1700000000000500000", attributes: {} }],
  });
  assertEquals([child.traceId, child.spanId, child.parentSpanId], [
    TRACE,
    "1122334455667788",
    "00f067aa0ba902b7",
  ]);
  assertEquals([child.kind, child.status.code, child.durationMs], ["unspecified", "unset", 0]);
});

Deno.test("decodeTraceRequestJson() accepts an empty request", () => {
  assertEquals(decodeTraceRequestJson({}), []);
  assertEquals(decodeTraceRequestJson({ resourceSpans: [] }), []);
});

Deno.test("decodeTraceRequestJson() rejects bodies of the wrong shape with TypeError", () => {
  const span = JSON_REQUEST.resourceSpans[0].scopeSpans[0].spans[0];
  const withSpan = (patch: Record<string, unknown>) => ({
    resourceSpans: [{ scopeSpans: [{ spans: [{ ...span, ...patch }] }] }],
  });
  for (
    const bad of [
      null,
      [],
      "x",
      { resourceSpans: {} },
      { resourceSpans: [{ scopeSpans: "no" }] },
      withSpan({ traceId: "abc" }),
      withSpan({ spanId: 7 }),
      withSpan({ startTimeUnixNano: "soon" }),
      withSpan({ kind: "SERVER" }),
      withSpan({ attributes: [{ key: "k", value: { intValue: 1.5 } }] }),
      withSpan({ attributes: [{ key: "k", value: { boolValue: "yes" } }] }),
    ]
  ) {
    assertThrows(() => decodeTraceRequestJson(bad), TypeError, undefined, JSON.stringify(bad)?.slice(0, 80));
  }
});
