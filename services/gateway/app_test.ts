import { assertEquals, assertStringIncludes } from "@std/assert";
import { KvrelayError } from "../../shared/errors.ts";
import { defaultKvSettings } from "../../shared/pipeline/kv_settings.ts";
import { DEFAULTS } from "../../shared/config/mod.ts";
import { createApp } from "./app.ts";
import type { Backend, CompletionEvent, CompletionInput } from "./backend.ts";
import { StopMatcher } from "./stop_matcher.ts";

/** A backend that answers with fixed pieces and records what it was asked. */
function recordingBackend(pieces: string[], fail?: KvrelayError) {
  const calls: CompletionInput[] = [];
  const backend: Backend = {
    model: () => Promise.resolve({ id: "m1", maxSeqLen: 512 }),
    tokenize: () => Promise.reject(new Error("not used")),
    detokenize: () => Promise.reject(new Error("not used")),
    ready: () => Promise.resolve({ prefill: true, compression: true, decode: !fail }),
    async *complete(input: CompletionInput): AsyncIterable<CompletionEvent> {
      calls.push(input);
      if (fail) throw fail;
      const stop = new StopMatcher(input.stop);
      let n = 0;
      for (const p of pieces) {
        n++;
        const r = stop.push(p);
        if (r.text) yield { type: "text", text: r.text };
        if (r.stopped) break;
      }
      yield {
        type: "done",
        finishReason: "length",
        usage: { prompt_tokens: 1, completion_tokens: n, total_tokens: n + 1, kv: {} as never },
      };
    },
  };
  return { backend, calls };
}

function app(backend: Backend, apiKeys: string[] = []) {
  return createApp({
    backend,
    kvDefaults: defaultKvSettings(DEFAULTS.kv),
    maxTokensLimit: 100,
    maxBodyBytes: 4096,
    apiKeys,
  });
}

const post = (a: ReturnType<typeof app>, path: string, body: unknown, headers: Record<string, string> = {}) =>
  a.request(path, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });

Deno.test("createApp() rejects bad completion bodies with OpenAI-shaped 4xx and never calls the backend", async () => {
  const { backend, calls } = recordingBackend(["a"]);
  const a = app(backend);
  const cases: [unknown, number, string | null][] = [
    ["{oops", 400, null],
    ["[1,2]", 400, null],
    [{ prompt: "x" }, 400, "model"],
    [{ model: "m1" }, 400, "prompt"],
    [{ model: "m1", prompt: "x", max_tokens: 101 }, 400, "max_tokens"],
    [{ model: "m1", prompt: "x", max_tokens: 1.5 }, 400, "max_tokens"],
    [{ model: "m1", prompt: "x", temperature: -1 }, 400, "temperature"],
    [{ model: "m1", prompt: "x", stream: "yes" }, 400, "stream"],
    [{ model: "m1", prompt: "x", n: 0 }, 400, "n"],
    [{ model: "m1", prompt: "x", n: 65 }, 400, "n"],
    [{ model: "m1", prompt: "x", stop: [1] }, 400, "stop"],
    [{ model: "m1", prompt: ["a", 3] }, 400, "prompt"],
    [{ model: "m1", prompt: "x", presence_penalty: 2.5 }, 400, "presence_penalty"],
    [{ model: "m1", prompt: "x", frequency_penalty: -3 }, 400, "frequency_penalty"],
    [{ model: "m1", prompt: "x", repetition_penalty: 0 }, 400, "repetition_penalty"],
    [{ model: "m1", prompt: "x", logit_bias: { "5": 101 } }, 400, "logit_bias.5"],
    [{ model: "m1", prompt: "x", logit_bias: { "a": 1 } }, 400, "logit_bias"],
    [{ model: "m1", prompt: "x", logprobs: 21 }, 400, "logprobs"],
    [{ model: "m1", prompt: "x", echo: true, logprobs: 1 }, 400, "echo"],
    [{ model: "m1", prompt: "x", suffix: "end" }, 400, "suffix"],
    [{ model: "m1", prompt: "x", best_of: 3, stream: true }, 400, "best_of"],
    [{ model: "m1", prompt: "x", best_of: 2, n: 3 }, 400, "best_of"],
    [{ model: "m1", prompt: "x", tools: [{ type: "function" }] }, 400, "tools"],
    [{ model: "m1", prompt: "x", stream_options: { include_usage: true } }, 400, "stream_options"],
    [{ model: "m1", prompt: "x", max_tokens: 512 }, 400, "max_tokens"],
    [
      { model: "m1", prompt: "x", kv_compression: { eviction_rate: 0.5 } },
      400,
      "kv_compression.eviction_rate",
    ],
    [{ model: "m1", prompt: "x", kv_compression: { nope: 1 } }, 400, "kv_compression.nope"],
    [{ model: "other", prompt: "x" }, 404, "model"],
    [{ model: "m1", prompt: "x".repeat(5000) }, 413, null],
  ];
  for (const [body, status, param] of cases) {
    const r = await post(a, "/v1/completions", body);
    const j = await r.json();
    assertEquals(r.status, status, `${JSON.stringify(body).slice(0, 60)} → ${JSON.stringify(j)}`);
    assertEquals(typeof j.error.message, "string");
    if (param) assertEquals(j.error.param, param);
  }
  assertEquals(calls.length, 0);
});

Deno.test("createApp() chat validation names the bad message field", async () => {
  const { backend, calls } = recordingBackend(["a"]);
  const a = app(backend);
  const call = { id: "c1", type: "function" as const, function: { name: "f", arguments: "{}" } };
  const cases: [unknown[], string][] = [
    [[{ role: "robot", content: "x" }], "messages[0].role"],
    [[{ role: "user", content: null }], "messages[0].content"],
    [[{ role: "user", content: "x", tool_calls: [call] }], "messages[0].tool_calls"],
    [
      [{ role: "assistant", content: null, tool_calls: [{ function: { name: "f" } }] }],
      "messages[0].tool_calls",
    ],
    [[{ role: "user", content: "x", tool_call_id: "c1" }], "messages[0].tool_call_id"],
  ];
  for (const [messages, param] of cases) {
    const r = await post(a, "/v1/chat/completions", { model: "m1", messages });
    assertEquals(r.status, 400);
    assertEquals((await r.json()).error.param, param);
  }
  assertEquals(calls.length, 0);
  // An assistant turn that called a tool has null content; the calls go to the template.
  const ok = await post(a, "/v1/chat/completions", {
    model: "m1",
    messages: [
      { role: "user", content: "x" },
      { role: "assistant", content: null, tool_calls: [call] },
      { role: "tool", content: "42", tool_call_id: "c1" },
    ],
  });
  assertEquals(ok.status, 200);
  assertEquals(calls[0].messages?.[1], { role: "assistant", content: "", tool_calls: [call] });
  assertEquals(calls[0].messages?.[2], { role: "tool", content: "42", tool_call_id: "c1" });
});

Deno.test("createApp() passes kv_compression and sampling through and applies stop strings", async () => {
  const { backend, calls } = recordingBackend(["Hel", "lo wo", "rld", "!"]);
  const r = await post(app(backend), "/v1/completions", {
    model: "m1",
    prompt: "p",
    max_tokens: 7,
    temperature: 0,
    stop: "wor",
    kv_compression: { codec: "kvsort", eviction_rate: 8, error_bound: 0.01, index_share: "auto" },
  });
  const j = await r.json();
  assertEquals(r.status, 200);
  assertEquals(j.choices[0].text, "Hello ");
  assertEquals(calls[0].sampling.maxTokens, 7);
  assertEquals(calls[0].kv.evictionRate, 8);
  assertEquals(calls[0].kv.errorBound, 0.01);
  assertEquals(calls[0].kv.indexShare, "auto");
});

Deno.test("createApp() streams chat chunks as SSE ending in [DONE]", async () => {
  const { backend } = recordingBackend(["a", "b"]);
  const r = await post(app(backend), "/v1/chat/completions", {
    model: "m1",
    messages: [{ role: "user", content: "hi" }],
    stream: true,
  });
  assertEquals(r.status, 200);
  const text = await r.text();
  const datas = text.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6));
  assertEquals(datas.at(-1), "[DONE]");
  const chunks = datas.slice(0, -1).map((d) => JSON.parse(d));
  assertEquals(chunks[0].choices[0].delta.role, "assistant");
  assertEquals(chunks.map((c) => c.choices[0].delta.content ?? "").join(""), "ab");
  assertEquals(chunks.at(-1).choices[0].finish_reason, "length");
});

Deno.test("createApp() maps a backend failure to its status before a stream starts", async () => {
  const { backend } = recordingBackend(
    [],
    new KvrelayError("unavailable", "no service answers on kvrelay.decode.open"),
  );
  const r = await post(app(backend), "/v1/completions", { model: "m1", prompt: "x", stream: true });
  assertEquals(r.status, 503);
  assertStringIncludes((await r.json()).error.message, "no service");
  const ready = await app(backend).request("/readyz");
  assertEquals(ready.status, 503);
});

Deno.test("createApp() with API keys requires a bearer token on /v1", async () => {
  const { backend } = recordingBackend(["a"]);
  const a = app(backend, ["k1"]);
  const no = await post(a, "/v1/completions", { model: "m1", prompt: "x" });
  assertEquals(no.status, 401);
  const yes = await post(a, "/v1/completions", { model: "m1", prompt: "x" }, { authorization: "Bearer k1" });
  assertEquals(yes.status, 200);
  assertEquals((await a.request("/healthz")).status, 200);
});

Deno.test("StopMatcher holds back a partial stop string and cuts at the first full one", () => {
  const s = new StopMatcher(["END"]);
  assertEquals(s.push("abE"), { text: "ab", stopped: false });
  assertEquals(s.push("N"), { text: "", stopped: false });
  assertEquals(s.push("Dxyz"), { text: "", stopped: true });
  const t = new StopMatcher(["END"]);
  assertEquals(t.push("abE"), { text: "ab", stopped: false });
  assertEquals(t.push("x"), { text: "Ex", stopped: false });
});
