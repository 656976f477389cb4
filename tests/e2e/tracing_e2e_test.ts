/**
 * One completion with every service exporting to the project's OTLP receiver: the spans of
 * gateway, the prefill node (prefill and its compression) and decode form one trace rooted at the gateway's
 * `POST /v1/completions`, and the encode spans account for `usage.kv` byte for byte.
 */
import { assert, assertEquals, assertExists } from "@std/assert";
import { startNatsServer } from "../_harness/nats_server.ts";
import { startServices } from "../_harness/services.ts";
import { STORIES260K } from "../_harness/paths.ts";
import {
  buildSpanTree,
  type FlatSpan,
  formatSpanTree,
  startOtlpReceiver,
} from "../../shared/telemetry/otlp/mod.ts";
import { attr } from "../../shared/telemetry/mod.ts";

const SERVICES = ["kvrelay-gateway", "kvrelay-prefill", "kvrelay-decode"];

Deno.test({
  name: "tracing e2e: one completion is one trace across every process, encode spans match usage.kv",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const spans: FlatSpan[] = [];
    const rx = startOtlpReceiver({ hostname: "127.0.0.1", onSpans: (s) => void spans.push(...s) });
    const nats = await startNatsServer({ jetstream: false });
    const svc = await startServices(nats.url, {
      KVRELAY_MODEL: STORIES260K.model,
      KVRELAY_TOKENIZER: STORIES260K.tokenizer,
      OTEL_DENO: "true",
      OTEL_EXPORTER_OTLP_ENDPOINT: rx.endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
    });
    let json;
    try {
      const model = (await (await fetch(`${svc.baseUrl}/v1/models`)).json()).data[0].id as string;
      const r = await fetch(`${svc.baseUrl}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model, prompt: "Once upon a time", max_tokens: 16, temperature: 0 }),
      });
      json = await r.json();
      assertEquals(r.status, 200, JSON.stringify(json));
    } finally {
      await svc.stop(); // SIGTERM: each service flushes its spans before it exits
      await nats.stop();
      await rx.close();
    }

    const requestId = json.id as string;
    const root = spans.find((s) =>
      s.name === "POST /v1/completions" && s.attributes[attr.REQUEST_ID] === requestId
    );
    assertExists(root, `no gateway span for ${requestId}: ${spans.map((s) => s.name).join(", ")}`);
    const trace = spans.filter((s) => s.traceId === root.traceId);
    console.log(formatSpanTree(buildSpanTree(trace)));

    // One trace across all four services.
    assertEquals(new Set(trace.map((s) => s.service)), new Set(SERVICES));
    for (const s of spans) {
      if (s.attributes[attr.REQUEST_ID] === requestId) assertEquals(s.traceId, root.traceId, s.name);
    }

    // Parent links: the root is the gateway's server span; every other span's parent is in the trace.
    assertEquals(root.service, "kvrelay-gateway");
    assertEquals(root.kind, "server");
    assertEquals(root.parentSpanId, undefined);
    const ids = new Set(trace.map((s) => s.spanId));
    for (const s of trace) {
      if (s === root) continue;
      assert(
        s.parentSpanId && ids.has(s.parentSpanId),
        `${s.name} [${s.service}] has no parent in the trace`,
      );
    }
    const byId = new Map(trace.map((s) => [s.spanId, s]));
    const parentOf = (s: FlatSpan) => byId.get(s.parentSpanId!)!;
    const one = (name: string, service: string) => {
      const found = trace.filter((s) => s.name === name);
      assertEquals(found.length, 1, `spans named ${name}`);
      assertEquals(found[0].service, service, name);
      return found[0];
    };
    const prefill = one("prefill", "kvrelay-prefill");
    assertEquals(parentOf(prefill).name, "prefill.run");
    assertEquals(parentOf(parentOf(prefill)), root);
    // compression runs in the prefill process: raw KV never leaves the node
    const handoff = one("handoff", "kvrelay-prefill");
    const evict = one("evict", "kvrelay-prefill");
    const transfer = one("transfer", "kvrelay-prefill");
    const generate = one("generate", "kvrelay-decode");
    assertEquals(parentOf(handoff).name, "prefill.run");
    assertEquals(parentOf(evict), handoff);
    assertEquals(parentOf(transfer), handoff);
    assertEquals(parentOf(parentOf(generate)), transfer, "decode's commit is handled under transfer");
    assertEquals(generate.attributes[attr.OUTPUT_TOKENS], json.usage.completion_tokens);

    // Encode spans: one per layer bundle, with the attributes, summing to usage.kv.
    const kv = json.usage.kv;
    const encodes = trace.filter((s) => s.name === "encode");
    const decodes = trace.filter((s) => s.name === "decode-kv");
    assertEquals(encodes.length, kv.kept_fraction_per_layer.length);
    assertEquals(decodes.length, encodes.length);
    for (const s of decodes) assertEquals(parentOf(parentOf(s)), transfer, "bundles land under transfer");
    let raw = 0, wire = 0;
    for (const s of encodes) {
      assertEquals(s.service, "kvrelay-prefill");
      assertEquals(parentOf(s), handoff);
      assertEquals(s.attributes[attr.REQUEST_ID], requestId);
      assertEquals(s.attributes[attr.CODEC_NAME], kv.codec);
      const layer = Number(s.attributes[attr.LAYER]);
      const r = s.attributes[attr.KV_BYTES_RAW] as number;
      const w = s.attributes[attr.KV_BYTES_ENCODED] as number;
      assert(r > 0 && w > 0, `layer ${layer} bytes`);
      assert(Math.abs((s.attributes[attr.KV_RATIO] as number) - r / w) < 1e-9);
      assertEquals(
        Math.round((s.attributes[attr.KV_KEPT_FRACTION] as number) * 1e5) / 1e5,
        kv.kept_fraction_per_layer[layer],
      );
      if (kv.error_bound !== null) assert((s.attributes[attr.CODEC_ERROR_BOUND] as number) >= 0);
      if (kv.codec === "kvsort") assert((s.attributes[attr.CODEC_INDEX_SHARE] as number) >= 1);
      assert(s.events.some((e) => e.name === "frame"), "codec frames as events");
      raw += r;
      wire += w;
    }
    assertEquals(raw, kv.raw_bytes);
    assertEquals(wire, kv.wire_bytes);
  },
});
