import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { defaultKvSettings } from "../../../shared/pipeline/kv_settings.ts";
import { DEFAULTS } from "../../../shared/config/mod.ts";
import { startOtlpReceiver } from "../../../shared/telemetry/otlp/mod.ts";
import type { FlatSpan } from "../../../shared/telemetry/otlp/mod.ts";
import { createApp } from "../app.ts";
import type { Backend, CompletionEvent } from "../backend.ts";
import { histogramBuckets, parseExposition, sumOf } from "../dashboard/view.js";
import { GatewayMetrics } from "./gateway_metrics.ts";

/** A backend that streams three pieces, then `done` with 5 prompt tokens. */
const backend: Backend = {
  model: () => Promise.resolve({ id: "m1", maxSeqLen: 512 }),
  ready: () => Promise.resolve({ prefill: true, compression: true, decode: true }),
  tokenize: () => Promise.reject(new Error("not used by these tests")),
  detokenize: () => Promise.reject(new Error("not used by these tests")),
  async *complete(): AsyncIterable<CompletionEvent> {
    for (const text of ["a", "b", "c"]) yield { type: "text", text };
    yield {
      type: "done",
      finishReason: "length",
      usage: {
        prompt_tokens: 5,
        completion_tokens: 3,
        total_tokens: 8,
        kv: { ratio: 3.5, canary: { tokens: 2, top1_agreement: 0.5, mean_kl: 0.25, ms: 3 } } as never,
      },
    };
  },
};

function setup(traceReceiver?: string) {
  const metrics = new GatewayMetrics();
  const app = createApp({
    backend,
    kvDefaults: defaultKvSettings(DEFAULTS.kv),
    maxTokensLimit: 100,
    maxBodyBytes: 4096,
    apiKeys: [],
    observability: { metrics, traceReceiver },
  });
  const complete = () =>
    app.request("/v1/completions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "m1", prompt: "x", max_tokens: 3 }),
    });
  const scrape = async () => parseExposition(await (await app.request("/metrics")).text());
  return { app, complete, scrape };
}

Deno.test("GET /metrics counts completions by route and status, tokens and TTFT", async () => {
  const { app, complete, scrape } = setup();
  const before = await scrape();
  assertEquals(sumOf(before, "kvrelay_requests_total"), 0);
  assertEquals((await complete()).status, 200);
  const bad = await app.request("/v1/completions", { method: "POST", body: "{" });
  assertEquals(bad.status, 400);
  await bad.body?.cancel();
  const after = await scrape();
  const count = (status: string) =>
    sumOf(after, "kvrelay_requests_total", (l) => l.endpoint === "/v1/completions" && l.status === status);
  assertEquals([count("200"), count("400")], [1, 1]);
  assertEquals([sumOf(after, "kvrelay_input_tokens_total"), sumOf(after, "kvrelay_output_tokens_total")], [
    5,
    3,
  ]);
  assertEquals(histogramBuckets(after, "kvrelay_ttft_ms").at(-1)?.count, 1);
  assertEquals(sumOf(after, "kvrelay_tpot_ms_count"), 1);
  // the canary's verdict of a sampled request (usage.kv.canary) reaches its histograms
  assertEquals(sumOf(before, "kvrelay_canary_top1_agreement_count"), 0);
  assertEquals(
    [sumOf(after, "kvrelay_canary_top1_agreement_sum"), sumOf(after, "kvrelay_canary_kl_nats_sum")],
    [0.5, 0.25],
  );
  const res = await app.request("/metrics");
  assertStringIncludes(res.headers.get("content-type") ?? "", "text/plain; version=0.0.4");
  assertStringIncludes(await res.text(), "# HELP kvrelay_ttft_ms Time to first token in milliseconds");
});

Deno.test("GET /dashboard serves the page and its scripts; /dashboard/api/requests lists completions", async () => {
  const { app, complete } = setup();
  const page = await app.request("/dashboard");
  assertEquals(page.headers.get("content-type"), "text/html; charset=utf-8");
  assertStringIncludes(await page.text(), 'data-metric="requests_total"');
  for (const js of ["/dashboard/app.js", "/dashboard/view.js"]) {
    const r = await app.request(js);
    assertEquals([r.status, r.headers.get("content-type")], [200, "text/javascript; charset=utf-8"]);
    await r.body?.cancel();
  }
  await (await complete()).body?.cancel();
  const { requests } = await (await app.request("/dashboard/api/requests")).json();
  assertEquals(requests.length, 1);
  assertEquals([
    requests[0].endpoint,
    requests[0].outcome,
    requests[0].completionTokens,
    requests[0].kv.ratio,
  ], [
    "/v1/completions",
    "ok",
    3,
    3.5,
  ]);
  assert(requests[0].id.startsWith("cmpl-"));
});

Deno.test("GET /dashboard/api/traces says when there is no receiver, or it is not running", async () => {
  const off = await (await setup().app.request("/dashboard/api/traces")).json();
  assertEquals([off.running, off.why], [false, "tracing is off (OTEL_DENO=true is not set)"]);
  const offTrace = await setup().app.request(`/dashboard/api/traces/${"a".repeat(32)}`);
  assertEquals(offTrace.status, 503);
  await offTrace.body?.cancel();

  const rx = startOtlpReceiver({ onSpans: () => {} });
  const dead = rx.endpoint;
  await rx.close();
  const { app } = setup(dead);
  const s = await (await app.request("/dashboard/api/traces")).json();
  assertEquals(s.running, false);
  assertStringIncludes(s.why, `the trace receiver at ${dead} is not running`);
  const r = await app.request(`/dashboard/api/traces/${"a".repeat(32)}`);
  const body = await r.json();
  assertEquals(r.status, 503);
  assertStringIncludes(body.error.message, "is not running");
  const bad = await app.request("/dashboard/api/traces/XYZ");
  assertEquals(bad.status, 400);
  await bad.body?.cancel();
});

Deno.test("GET /dashboard/api/traces/<id> answers the receiver's spans of one trace", async () => {
  const traceId = "0af7651916cd43dd8448eb211c80319c";
  const span: FlatSpan = {
    traceId,
    spanId: "00f067aa0ba902b7",
    name: "POST /v1/completions",
    kind: "server",
    startTimeUnixNano: "1700000000000000000",
    endTimeUnixNano: "1700000000005000000",
    durationMs: 5,
    service: "kvrelay-gateway",
    scope: "deno",
    attributes: {},
    status: { code: "unset" },
    events: [],
  };
  const rx = startOtlpReceiver({
    onSpans: () => {},
    lookUp: (id) => Promise.resolve(id === traceId ? [span] : []),
  });
  try {
    const { app } = setup(rx.endpoint);
    const s = await (await app.request("/dashboard/api/traces")).json();
    assertEquals([s.running, s.receiver], [true, rx.endpoint]);
    const hit = await (await app.request(`/dashboard/api/traces/${traceId}`)).json();
    assertEquals(hit.spans.map((x: FlatSpan) => x.name), ["POST /v1/completions"]);
    const miss = await app.request(`/dashboard/api/traces/${"b".repeat(32)}`);
    assertEquals(miss.status, 404);
    await miss.body?.cancel();
  } finally {
    await rx.close();
  }
});
