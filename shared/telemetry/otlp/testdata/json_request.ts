/** An OTLP/JSON trace export for the decoder and receiver tests. */
export const TRACE = "0af7651916cd43dd8448eb211c80319c";

export const JSON_REQUEST = {
  resourceSpans: [{
    resource: { attributes: [{ key: "service.name", value: { stringValue: "decode" } }] },
    scopeSpans: [{
      scope: { name: "kvrelay" },
      spans: [{
        traceId: TRACE,
        spanId: "00f067aa0ba902b7",
        parentSpanId: "",
        name: "decode-kv",
        kind: 1,
        startTimeUnixNano: "1700000000000000000",
        endTimeUnixNano: 1700000000001000000,
        attributes: [
          { key: "kvrelay.kv.bytes_encoded", value: { intValue: "1024" } },
          { key: "big", value: { intValue: "9007199254740993" } },
          { key: "kvrelay.kv.kept_fraction", value: { doubleValue: 0.5 } },
          { key: "flag", value: { boolValue: false } },
          { key: "arr", value: { arrayValue: { values: [{ stringValue: "a" }, { intValue: 3 }] } } },
        ],
        events: [{ timeUnixNano: "1700000000000500000", name: "exception", attributes: [] }],
        status: { code: 2, message: "corrupt" },
      }, {
        // base64 ids, from exporters that predate the hex rule
        traceId: btoa(String.fromCharCode(...TRACE.match(/../g)!.map((h) => parseInt(h, 16)))),
        spanId: "ESIzRFVmd4g=",
        parentSpanId: "00f067aa0ba902b7",
        name: "child",
      }],
    }],
  }],
};
