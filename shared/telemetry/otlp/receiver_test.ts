import { assertEquals, assertStringIncludes } from "@std/assert";
import { createOtlpHandler, startOtlpReceiver } from "./receiver.ts";
import type { FlatSpan } from "./span.ts";
import { JSON_REQUEST } from "./testdata/json_request.ts";
import { bytes, hexBytes, len, str } from "./testdata/proto_writer.ts";

const PROTO_REQUEST = bytes(len(
  1,
  len(
    2,
    len(
      2,
      len(1, hexBytes("0af7651916cd43dd8448eb211c80319c")),
      len(2, hexBytes("00f067aa0ba902b7")),
      str(5, "p"),
    ),
  ),
));

function setup(maxBodyBytes?: number) {
  const got: FlatSpan[][] = [];
  const handler = createOtlpHandler({ onSpans: (s) => void got.push(s), maxBodyBytes });
  const post = (path: string, type: string, body: BodyInit, headers: Record<string, string> = {}) =>
    handler(
      new Request(`http://x${path}`, { method: "POST", body, headers: { "content-type": type, ...headers } }),
    );
  return { got, handler, post };
}

Deno.test("createOtlpHandler() accepts protobuf and JSON trace exports", async () => {
  const { got, post } = setup();
  const p = await post("/v1/traces", "application/x-protobuf", PROTO_REQUEST);
  assertEquals([p.status, p.headers.get("content-type"), (await p.bytes()).length], [
    200,
    "application/x-protobuf",
    0,
  ]);
  const j = await post("/v1/traces", "application/json; charset=utf-8", JSON.stringify(JSON_REQUEST));
  assertEquals([j.status, await j.text()], [200, "{}"]);
  assertEquals(got.map((b) => b.map((s) => s.name)), [["p"], ["decode-kv", "child"]]);
});

Deno.test("createOtlpHandler() accepts a gzip body", async () => {
  const { got, post } = setup();
  const gz = new Response(new Blob([PROTO_REQUEST]).stream().pipeThrough(new CompressionStream("gzip")));
  const res = await post("/v1/traces", "application/x-protobuf", await gz.arrayBuffer(), {
    "content-encoding": "gzip",
  });
  assertEquals(res.status, 200);
  assertEquals(got[0][0].name, "p");
});

Deno.test("createOtlpHandler() answers malformed bodies with 400 and stores nothing", async () => {
  const { got, post } = setup();
  for (
    const [type, body] of [
      ["application/x-protobuf", new Uint8Array([0x0a, 0x20, 1, 2])],
      ["application/x-protobuf", new Uint8Array([0xff, 0xff, 0xff])],
      ["application/json", "{not json"],
      ["application/json", '{"resourceSpans": 3}'],
    ] as const
  ) {
    const res = await post("/v1/traces", type, body);
    assertEquals(res.status, 400, `${type} ${body}`);
    assertStringIncludes(await res.text(), "malformed");
  }
  const gz = await post("/v1/traces", "application/json", "not gzip", { "content-encoding": "gzip" });
  assertEquals(gz.status, 400);
  await gz.body?.cancel();
  assertEquals(got, []);
});

Deno.test("createOtlpHandler() ignores metrics and logs, refuses other types, paths and sizes", async () => {
  const { got, handler, post } = setup(64);
  for (const path of ["/v1/metrics", "/v1/logs"]) {
    assertEquals((await post(path, "application/x-protobuf", new Uint8Array([1, 2, 3]))).status, 200);
  }
  const statuses = [];
  for (
    const res of [
      await post("/v1/traces", "text/plain", "x"),
      await post("/v2/traces", "application/json", "{}"),
      await handler(new Request("http://x/v1/traces")),
      await post("/v1/traces", "application/x-protobuf", new Uint8Array(65)),
    ]
  ) {
    statuses.push(res.status);
    await res.body?.cancel();
  }
  assertEquals(statuses, [415, 404, 405, 413]);
  assertEquals(got, []);
});

Deno.test("startOtlpReceiver() serves the handler over HTTP", async () => {
  const got: FlatSpan[] = [];
  const rx = startOtlpReceiver({ port: 0, onSpans: (s) => void got.push(...s) });
  try {
    const res = await fetch(`${rx.endpoint}/v1/traces`, {
      method: "POST",
      headers: { "content-type": "application/x-protobuf" },
      body: PROTO_REQUEST,
    });
    await res.body?.cancel();
    assertEquals(res.status, 200);
    assertEquals(got.map((s) => s.name), ["p"]);
  } finally {
    await rx.close();
  }
});

Deno.test("createOtlpHandler() with lookUp answers GET /api/traces/<id> with the stored spans", async () => {
  const stored: FlatSpan[] = [];
  const handler = createOtlpHandler({
    onSpans: (s) => void stored.push(...s),
    lookUp: (id) => Promise.resolve(stored.filter((s) => s.traceId === id)),
  });
  await handler(
    new Request("http://x/v1/traces", {
      method: "POST",
      body: PROTO_REQUEST,
      headers: { "content-type": "application/x-protobuf" },
    }),
  );
  const get = (path: string, method = "GET") => handler(new Request(`http://x${path}`, { method }));
  const hit = await get("/api/traces/0af7651916cd43dd8448eb211c80319c");
  const body = await hit.json();
  assertEquals([hit.status, body.traceId, body.spans.map((s: FlatSpan) => s.name)], [
    200,
    "0af7651916cd43dd8448eb211c80319c",
    ["p"],
  ]);
  const none = await get("/api/traces/00000000000000000000000000000001");
  assertEquals([none.status, (await none.text()).trim()], [
    404,
    "no spans of trace 00000000000000000000000000000001 stored",
  ]);
  const post = await get("/api/traces/0af7651916cd43dd8448eb211c80319c", "POST");
  assertEquals([post.status, (await post.text()).trim()], [405, "method not allowed"]);
  const bad = await get("/api/traces/not-a-trace-id");
  assertEquals(bad.status, 404);
  await bad.body?.cancel();
});

Deno.test("createOtlpHandler() without lookUp serves no trace look-ups", async () => {
  const handler = createOtlpHandler({ onSpans: () => {} });
  const r = await handler(new Request("http://x/api/traces/0af7651916cd43dd8448eb211c80319c"));
  assertEquals(r.status, 404);
  await r.body?.cancel();
});
