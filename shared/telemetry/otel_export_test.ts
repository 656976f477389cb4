/**
 * End to end with Deno's own exporter: child processes run with `OTEL_DENO=true` against
 * the project receiver, over a real nats-server; the stored JSONL must hold one trace with
 * the right parent links, in both OTLP encodings, and spans must survive a SIGTERM.
 */
import { assert, assertEquals, assertExists } from "@std/assert";
import { startNatsServer } from "../../tests/_harness/nats_server.ts";
import { type FlatSpan, openSpanStore, readSpans, startOtlpReceiver } from "./otlp/mod.ts";

const CHILD = new URL("./testdata/traced_child.ts", import.meta.url).pathname;

interface Child {
  proc: Deno.ChildProcess;
  /** Next stdout line. */
  line(): Promise<string>;
  stderr: Promise<string>;
}

function spawnChild(args: string[], env: Record<string, string>): Child {
  const proc = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--cached-only", CHILD, ...args],
    env: { ...env, OTEL_DENO: "true", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  const line = async () => {
    while (!buf.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) throw new Error(`child exited before printing a line: ${buf}`);
      buf += value;
    }
    const i = buf.indexOf("\n");
    const out = buf.slice(0, i);
    buf = buf.slice(i + 1);
    return out;
  };
  const stderr = new Response(proc.stderr).text();
  // Keep reading stdout so the child never blocks on a full pipe; release it at exit.
  proc.status.then(() => lines.cancel().catch(() => {}));
  return { proc, line, stderr };
}

async function receiverWithStore() {
  const dir = await Deno.makeTempDir({ prefix: "kvrelay-otel-" });
  const store = await openSpanStore(`${dir}/traces.jsonl`);
  const rx = startOtlpReceiver({ onSpans: (s) => store.append(s) });
  /** Spans in the JSONL once `ok` holds for them (or the deadline passes). */
  const waitFor = async (ok: (spans: FlatSpan[]) => boolean, ms = 8000) => {
    const signal = AbortSignal.timeout(ms);
    let spans: FlatSpan[] = [];
    while (!signal.aborted) {
      spans = await readSpans(store.path);
      if (ok(spans)) return spans;
      await new Promise((r) => setTimeout(r, 50));
    }
    return spans;
  };
  const close = async () => {
    await rx.close();
    await Deno.remove(dir, { recursive: true });
  };
  return { rx, waitFor, close };
}

function byName(spans: FlatSpan[], name: string): FlatSpan {
  const s = spans.find((x) => x.name === name);
  assertExists(s, `no span '${name}' in ${spans.map((x) => x.name).join(", ")}`);
  return s;
}

async function natsRoundTrip(protocol: "http/protobuf" | "http/json"): Promise<void> {
  const nats = await startNatsServer({ jetstream: false });
  const rx = await receiverWithStore();
  try {
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: rx.rx.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: protocol };
    const responder = spawnChild(["responder", nats.url], { ...env, OTEL_SERVICE_NAME: "prefill" });
    assertEquals(await responder.line(), "ready");
    const caller = spawnChild(["caller", nats.url], { ...env, OTEL_SERVICE_NAME: "gateway" });
    const traceId = await caller.line();
    const [c, r] = await Promise.all([caller.proc.status, responder.proc.status]);
    assert(c.success, `caller failed: ${await caller.stderr}`);
    assert(r.success, `responder failed: ${await responder.stderr}`);

    const names = ["gateway", "prefill.request", "decode-kv", "prefill", "encode"];
    const spans = (await rx.waitFor((s) => names.every((n) => s.some((x) => x.name === n))))
      .filter((s) => s.scope === "kvrelay");
    assertEquals(
      new Set(spans.map((s) => s.traceId)),
      new Set([traceId]),
      "one trace id across both processes",
    );

    const gateway = byName(spans, "gateway");
    const request = byName(spans, "prefill.request");
    const failed = byName(spans, "decode-kv");
    const prefill = byName(spans, "prefill");
    const encode = byName(spans, "encode");
    assertEquals(gateway.parentSpanId, undefined);
    assertEquals(request.parentSpanId, gateway.spanId);
    assertEquals(failed.parentSpanId, gateway.spanId);
    assertEquals(prefill.parentSpanId, request.spanId, "remote parent came through NATS headers");
    assertEquals(encode.parentSpanId, prefill.spanId);

    assertEquals([gateway.service, prefill.service], ["gateway", "prefill"]);
    assertEquals([request.kind, prefill.kind, encode.kind], ["client", "server", "internal"]);
    assertEquals(gateway.attributes["kvrelay.request_id"], "req-1");
    assertEquals(prefill.attributes["messaging.system"], "nats");
    assertEquals(encode.attributes["kvrelay.layer"], "0-3");
    assertEquals(encode.attributes["kvrelay.kv.bytes_raw"], 4096);
    assertEquals(encode.attributes["kvrelay.kv.ratio"], 4);
    assertEquals(encode.attributes["kvrelay.codec.error_bound"], 0.01);
    assertEquals(encode.events.map((e) => [e.name, e.attributes["kvrelay.kv.tokens"]]), [["quantize", 16]]);
    assert(encode.durationMs >= 1, `encode took ${encode.durationMs} ms`);
    assertEquals(failed.status, { code: "error", message: "checksum mismatch" });
    assertEquals(failed.attributes["error.type"], "corrupt_bundle");
    assertEquals(failed.events[0].name, "exception");
  } finally {
    await rx.close();
    await nats.stop();
  }
}

Deno.test("Deno's http/protobuf export: one trace across a NATS request, parents linked", () =>
  natsRoundTrip("http/protobuf"));

Deno.test("Deno's http/json export: one trace across a NATS request, parents linked", () =>
  natsRoundTrip("http/json"));

Deno.test("installShutdown() flushes spans on SIGTERM; honoRouteName() names the server span", async () => {
  const rx = await receiverWithStore();
  try {
    const child = spawnChild(["serve"], {
      OTEL_EXPORTER_OTLP_ENDPOINT: rx.rx.endpoint,
      OTEL_SERVICE_NAME: "gateway",
    });
    const port = Number((await child.line()).split(" ")[1]);
    const traceId = "0af7651916cd43dd8448eb211c80319c";
    const clientSpan = "b7ad6b7169203331";
    const res = await fetch(`http://127.0.0.1:${port}/v1/items/42`, {
      headers: { traceparent: `00-${traceId}-${clientSpan}-01` },
    });
    assertEquals(await res.text(), "ok");
    child.proc.kill("SIGTERM");
    const status = await child.proc.status;
    assertEquals(status.code, 0, `child did not exit cleanly: ${await child.stderr}`);

    // Deno exports in batches: these spans are still in its queue when SIGTERM arrives.
    const spans = await rx.waitFor((s) => s.some((x) => x.name === "lookup"), 3000);
    const server = byName(spans, "GET /v1/items/:id");
    const lookup = byName(spans, "lookup");
    assertEquals(server.traceId, traceId, "incoming traceparent honoured");
    assertEquals(server.parentSpanId, clientSpan);
    assertEquals(server.kind, "server");
    assertEquals(server.attributes["http.route"], "/v1/items/:id");
    assertEquals(lookup.parentSpanId, server.spanId);
    assertEquals(lookup.attributes["kvrelay.request_id"], "42");
  } finally {
    await rx.close();
  }
});
