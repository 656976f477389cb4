/**
 * The completion routes under overload and slow or vanishing clients, driven in process
 * (`app.request`) or, where the client's connection matters, through `Deno.serve`.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { defaultKvSettings } from "../../shared/pipeline/kv_settings.ts";
import { DEFAULTS } from "../../shared/config/mod.ts";
import { createApp, type GatewayOptions } from "./app.ts";
import type { Backend, CompletionEvent, CompletionInput } from "./backend.ts";

const USAGE = { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2, kv: {} as never };

/** A backend whose completions wait for `gate` (or their signal) and record how they ended. */
function gatedBackend(opts: { firstAfterMs?: number } = {}) {
  let open!: () => void;
  const gate = new Promise<void>((r) => open = r);
  const ended: string[] = [];
  const backend: Backend = {
    model: () => Promise.resolve({ id: "m1", maxSeqLen: 512 }),
    tokenize: () => Promise.reject(new Error("not used")),
    detokenize: () => Promise.reject(new Error("not used")),
    ready: () => Promise.resolve({ prefill: true, compression: true, decode: true }),
    async *complete(_input: CompletionInput, signal: AbortSignal): AsyncIterable<CompletionEvent> {
      const aborted = new Promise<void>((r) => signal.addEventListener("abort", () => r(), { once: true }));
      if (opts.firstAfterMs) {
        await Promise.race([new Promise((r) => setTimeout(r, opts.firstAfterMs)), aborted]);
      } else await Promise.race([gate, aborted]);
      if (signal.aborted) {
        ended.push("cancelled");
        return;
      }
      yield { type: "text", text: "hi" };
      ended.push("done");
      yield { type: "done", finishReason: "length", usage: USAGE };
    },
  };
  return { backend, open: () => open(), ended };
}

function app(backend: Backend, extra: Partial<GatewayOptions> = {}) {
  return createApp({
    backend,
    kvDefaults: defaultKvSettings(DEFAULTS.kv),
    maxTokensLimit: 100,
    maxBodyBytes: 4096,
    apiKeys: [],
    ...extra,
  });
}

const body = (stream: boolean) => JSON.stringify({ model: "m1", prompt: "x", stream });
const init = (stream: boolean): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: body(stream),
});

Deno.test("createApp() with maxInflight answers 429 with Retry-After past the limit, and frees places", async () => {
  const { backend, open } = gatedBackend();
  const a = app(backend, { maxInflight: 2, sseKeepAliveMs: 20 });
  // Two streams hold the two places until they end.
  const held = [a.request("/v1/completions", init(true)), a.request("/v1/completions", init(false))];
  await new Promise((r) => setTimeout(r, 50));
  const refused = await a.request("/v1/completions", init(true));
  assertEquals(refused.status, 429);
  assertEquals(refused.headers.get("retry-after"), "1");
  const j = await refused.json();
  assertEquals(j.error.code, "overloaded");
  assertEquals(j.error.type, "requests");
  assertEquals(typeof j.error.message, "string");
  open();
  const [s, n] = await Promise.all(held);
  assertStringIncludes(await s.text(), "[DONE]");
  assertEquals((await n.json()).choices[0].text, "hi");
  const again = await a.request("/v1/completions", init(false));
  assertEquals(again.status, 200, "the places are free again");
  await again.body?.cancel();
});

Deno.test("createApp() streams keep-alive comments while the first token is slow", async () => {
  const { backend } = gatedBackend({ firstAfterMs: 300 });
  const r = await app(backend, { sseKeepAliveMs: 40 }).request("/v1/completions", init(true));
  assertEquals(r.status, 200);
  const text = await r.text();
  const firstData = text.indexOf("data: ");
  const comments = text.slice(0, firstData).split("\n").filter((l) => l === ": keep-alive");
  assert(comments.length >= 2, `keep-alives before the first chunk: ${JSON.stringify(text.slice(0, 200))}`);
  assertStringIncludes(text, '"text":"hi"');
  assert(text.trimEnd().endsWith("data: [DONE]"));
});

Deno.test("a non-streaming client that hangs up cancels its completion (Deno.serve)", async () => {
  const { backend, ended } = gatedBackend();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app(backend).fetch);
  try {
    const ac = new AbortController();
    const req = fetch(`http://127.0.0.1:${server.addr.port}/v1/completions`, {
      ...init(false),
      signal: ac.signal,
    });
    await new Promise((r) => setTimeout(r, 100));
    ac.abort();
    await req.catch(() => {});
    const until = Date.now() + 5000;
    while (!ended.length && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    assertEquals(ended, ["cancelled"]);
  } finally {
    await server.shutdown();
  }
});
