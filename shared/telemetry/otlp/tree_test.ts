import { assertEquals, assertStringIncludes } from "@std/assert";
import type { FlatSpan } from "./span.ts";
import { buildSpanTree, formatSpanTree, selectTrace } from "./tree.ts";

const T = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const T2 = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

function span(
  id: string,
  parent: string | undefined,
  startMs: number,
  durMs: number,
  extra: Partial<FlatSpan> = {},
) {
  const start = 1_700_000_000_000_000_000n + BigInt(startMs * 1e6);
  const s: FlatSpan = {
    traceId: T,
    spanId: id.padStart(16, "0"),
    name: `s${id}`,
    kind: "internal",
    startTimeUnixNano: start.toString(),
    endTimeUnixNano: (start + BigInt(durMs * 1e6)).toString(),
    durationMs: durMs,
    service: "svc",
    scope: "kvrelay",
    attributes: {},
    status: { code: "unset" },
    events: [],
    ...extra,
  };
  if (parent) s.parentSpanId = parent.padStart(16, "0");
  return s;
}

Deno.test("buildSpanTree() links children by parent id, sorted by start", () => {
  const spans = [
    span("3", "1", 5, 1),
    span("2", "1", 1, 2),
    span("1", undefined, 0, 10),
    span("4", "2", 1.5, 0.5),
  ];
  const [root, ...rest] = buildSpanTree(spans);
  assertEquals(rest, []);
  assertEquals(root.span.name, "s1");
  assertEquals(root.children.map((c) => c.span.name), ["s2", "s3"]);
  assertEquals(root.children[0].children.map((c) => c.span.name), ["s4"]);
  assertEquals(root.orphan, false);
});

Deno.test("buildSpanTree() makes orphans and cycles roots and counts a duplicate once", () => {
  const spans = [
    span("1", undefined, 0, 1),
    span("2", "9", 1, 1),
    span("5", "6", 2, 1),
    span("6", "5", 3, 1),
  ];
  const roots = buildSpanTree([...spans, span("1", undefined, 0, 1)]);
  assertEquals(roots.map((r) => [r.span.name, r.orphan]), [["s1", false], ["s2", true], ["s5", true]]);
  assertEquals(roots.map((r) => r.children.map((c) => c.span.name)), [[], [], ["s6"]], "cycle broken once");
});

Deno.test("selectTrace() picks a trace by id, unique prefix or 'last'", () => {
  const spans = [span("1", undefined, 0, 1), span("2", undefined, 0, 1, { traceId: T2 })];
  assertEquals(selectTrace(spans, "last").map((s) => s.traceId), [T2]);
  assertEquals(selectTrace(spans, T).length, 1);
  assertEquals(selectTrace(spans, "bbbb").map((s) => s.spanId), [spans[1].spanId]);
  assertEquals(selectTrace(spans, "cc"), []);
  assertEquals(selectTrace([], "last"), []);
});

Deno.test("formatSpanTree() prints indented durations, offsets, key attributes and errors", () => {
  const spans = [
    span("1", undefined, 0, 12.5, { name: "POST /v1/chat/completions", kind: "server", service: "gateway" }),
    span("2", "1", 1, 4, {
      name: "encode",
      service: "compression",
      attributes: { "kvrelay.layer": "0-3", "kvrelay.kv.ratio": 3.14159, "other": 1 },
    }),
    span("3", "2", 2, 1, { name: "quantize", status: { code: "error", message: "bound exceeded" } }),
  ];
  const text = formatSpanTree(buildSpanTree(spans));
  const lines = text.split("\n");
  assertEquals(lines[0], `trace ${T}  3 spans  3 services  12.50 ms`);
  assertEquals(lines[1].replace(/ +/g, " "), "POST /v1/chat/completions 12.50 ms +0.00 ms [gateway] server");
  assertEquals(
    lines[2].replace(/ +/g, " "),
    " encode 4.00 ms +1.00 ms [compression] kvrelay.layer=0-3 kvrelay.kv.ratio=3.142",
  );
  assertEquals(lines[3].replace(/ +/g, " "), " quantize 1.00 ms +2.00 ms [svc] ERROR: bound exceeded");
  assertEquals([lines[2].indexOf("encode"), lines[3].indexOf("quantize")], [2, 4]);
  assertStringIncludes(
    formatSpanTree(buildSpanTree([span("7", "8", 0, 1)])),
    "(parent 0000000000000008 not received)",
  );
  assertEquals(formatSpanTree([]), "(no spans)");
});
