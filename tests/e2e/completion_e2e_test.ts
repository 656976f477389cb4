/**
 * The whole request path on a real model over a real nats-server: gateway → prefill →
 * compression → decode → gateway, each its own process.
 */
import { assert, assertEquals, assertGreater, assertStringIncludes } from "@std/assert";
import { startNatsServer } from "../_harness/nats_server.ts";
import { startServices } from "../_harness/services.ts";
import { KV_SAMPLES_DIR, STORIES260K, STORIES260K_GREEDY } from "../_harness/paths.ts";
import { Model } from "../../shared/model/mod.ts";
import { runLocal } from "../../shared/pipeline/local_run.ts";
import { defaultKvSettings } from "../../shared/pipeline/kv_settings.ts";
import { loadConfig } from "../../shared/config/mod.ts";
import { Llama2cTokenizer } from "../../shared/tokenizer/mod.ts";

const ENV = { KVRELAY_MODEL: STORIES260K.model, KVRELAY_TOKENIZER: STORIES260K.tokenizer };

async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const r = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: r.status, json: await r.json() };
}

async function sseTexts(
  url: string,
  body: unknown,
): Promise<{ chunks: Record<string, unknown>[]; done: boolean }> {
  const r = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  assertEquals(r.status, 200);
  assertStringIncludes(r.headers.get("content-type") ?? "", "text/event-stream");
  const text = await r.text();
  const datas = text.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6));
  const done = datas.at(-1) === "[DONE]";
  return { chunks: datas.filter((d) => d !== "[DONE]").map((d) => JSON.parse(d)), done };
}

Deno.test({
  name: "e2e: stories260K greedy completion through HTTP equals generate, streams, and reports usage.kv",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const nats = await startNatsServer();
    const svc = await startServices(nats.url, ENV);
    try {
      const models = await (await fetch(`${svc.baseUrl}/v1/models`)).json();
      const modelId = models.data[0].id as string;
      assertEquals(models.object, "list");

      // The reference: the same path in one process (what `generate` runs).
      const model = await Model.load({ modelPath: ENV.KVRELAY_MODEL, tokenizerPath: ENV.KVRELAY_TOKENIZER });
      const local = await runLocal(model, model.tokenizer.encode(""), {
        kv: defaultKvSettings(loadConfig(ENV).kv),
        sampling: { maxTokens: 64, temperature: 0, topP: 1 },
      });
      // and a prompt that ends mid-sentence: the first word of the completion keeps its space
      const storyPrompt = "Lily and Ben went to the";
      const localStory = await runLocal(model, model.tokenizer.encode(storyPrompt), {
        kv: defaultKvSettings(loadConfig(ENV).kv),
        sampling: { maxTokens: 16, temperature: 0, topP: 1 },
      });
      await model.close();
      assert(local.text.startsWith(STORIES260K_GREEDY), `local greedy text: ${local.text}`);
      assert(localStory.text.startsWith(" "), `generate's text: ${JSON.stringify(localStory.text)}`);

      await t.step(
        "the text over HTTP equals generate's for a prompt, first token's space included",
        async () => {
          const { status, json } = await post(`${svc.baseUrl}/v1/completions`, {
            model: modelId,
            prompt: storyPrompt,
            max_tokens: 16,
            temperature: 0,
          });
          assertEquals(status, 200, JSON.stringify(json));
          assertEquals(json.choices[0].text, localStory.text);
          const { chunks } = await sseTexts(`${svc.baseUrl}/v1/completions`, {
            model: modelId,
            prompt: storyPrompt,
            max_tokens: 16,
            temperature: 0,
            stream: true,
          });
          assertEquals(
            chunks.map((c) => (c.choices as { text: string }[])[0].text).join(""),
            localStory.text,
          );
        },
      );

      await t.step("non-streaming /v1/completions", async () => {
        const { status, json } = await post(`${svc.baseUrl}/v1/completions`, {
          model: modelId,
          prompt: "",
          max_tokens: 64,
          temperature: 0,
        });
        assertEquals(status, 200, JSON.stringify(json));
        assertEquals(json.object, "text_completion");
        assertEquals(json.choices[0].text, local.text);
        assert(json.choices[0].text.startsWith(STORIES260K_GREEDY));
        const kv = json.usage.kv;
        assertEquals(json.usage.completion_tokens, local.ids.length);
        assertEquals(kv.codec, local.kv.codec);
        assertEquals(kv.raw_bytes, local.kv.raw_bytes);
        assertGreater(kv.wire_bytes, 0);
        assertEquals(kv.ratio, Math.round((kv.raw_bytes / kv.wire_bytes) * 1000) / 1000);
        for (const k of ["prefill", "encode", "transfer", "decode_kv", "generate"]) {
          assert(typeof kv.ms[k] === "number" && kv.ms[k] >= 0, `usage.kv.ms.${k}`);
        }
        console.log("usage.kv of one stories260K request:", JSON.stringify(kv));
      });

      await t.step("streaming /v1/completions gives the same text, ends with [DONE]", async () => {
        const { chunks, done } = await sseTexts(`${svc.baseUrl}/v1/completions`, {
          model: modelId,
          prompt: "",
          max_tokens: 64,
          temperature: 0,
          stream: true,
          stream_options: { include_usage: true },
        });
        assert(done);
        // OpenAI's order: the text, a chunk with the finish reason, then one with usage and no choices.
        const usage = chunks.pop() as { usage: { kv: unknown }; choices: unknown[] };
        assertEquals(usage.choices, []);
        assert(usage.usage.kv);
        assertEquals(chunks.map((c) => (c.choices as { text: string }[])[0].text).join(""), local.text);
        const last = chunks.at(-1) as { choices: { finish_reason: string }[] };
        assertEquals(last.choices[0].finish_reason, local.finishReason);
      });

      await t.step("chat completion answers in OpenAI's shape", async () => {
        const { status, json } = await post(`${svc.baseUrl}/v1/chat/completions`, {
          model: modelId,
          messages: [{ role: "user", content: "Tell me a story" }],
          max_tokens: 8,
          temperature: 0,
        });
        assertEquals(status, 200, JSON.stringify(json));
        assertEquals(json.object, "chat.completion");
        assertEquals(json.choices[0].message.role, "assistant");
        assertEquals(typeof json.choices[0].message.content, "string");
        // A llama2.c checkpoint has no chat template: one `role: content` line per turn.
        const tok = await Llama2cTokenizer.load(ENV.KVRELAY_TOKENIZER);
        assertEquals(json.usage.prompt_tokens, tok.encode("user: Tell me a story\nassistant:").length);
      });

      await t.step("kv_compression evicts per head and encodes lossy, echoed in usage.kv", async () => {
        const sample = JSON.parse(await Deno.readTextFile(`${KV_SAMPLES_DIR}/stories260K/sample-00.json`));
        const { status, json } = await post(`${svc.baseUrl}/v1/completions`, {
          model: modelId,
          prompt: (sample.tokens as number[]).slice(0, 300),
          max_tokens: 16,
          temperature: 0,
          kv_compression: {
            codec: "kvsort",
            eviction_rate: 4,
            protected_window: 16,
            block_size: 8,
            error_bound: 1e-2,
            index_share: 4,
          },
        });
        assertEquals(status, 200, JSON.stringify(json));
        const kv = json.usage.kv;
        assertEquals(json.usage.prompt_tokens, 300);
        assertEquals(kv.eviction, "kvcompress");
        assertEquals(kv.error_bound, 1e-2);
        assertEquals(kv.index_share, 4);
        assert(kv.kept_fraction <= 0.25 && kv.kept_fraction > 0.2, `kept ${kv.kept_fraction}`);
        assertEquals(kv.kept_fraction_per_layer.length, 5);
        assert(new Set(kv.kept_fraction_per_layer).size > 1, "rates vary by layer");
        assertGreater(kv.ratio, 4);
        assertEquals(json.usage.completion_tokens, 16);
      });

      await t.step("bad input gets 4xx JSON errors", async () => {
        const url = `${svc.baseUrl}/v1/completions`;
        const bad = await post(url, "{not json");
        assertEquals(bad.status, 400);
        assertEquals(bad.json.error.type, "invalid_request_error");
        const range = await post(url, { model: modelId, prompt: "x", max_tokens: 0 });
        assertEquals(range.status, 400);
        assertEquals(range.json.error.param, "max_tokens");
        const unknown = await post(url, { model: "no-such-model", prompt: "x" });
        assertEquals(unknown.status, 404);
        const big = await post(url, { model: modelId, prompt: "x".repeat(2 * 1024 * 1024) });
        assertEquals(big.status, 413);
        const kv = await post(url, { model: modelId, prompt: "x", kv_compression: { error_bound: "big" } });
        assertEquals(kv.status, 400);
        assertEquals(kv.json.error.param, "kv_compression.error_bound");
      });

      await t.step("a service that is down makes /readyz fail and requests fail fast with 503", async () => {
        await svc.stop("decode");
        const ready = await fetch(`${svc.baseUrl}/readyz`);
        assertEquals(ready.status, 503);
        assertEquals((await ready.json()).services.decode, false);
        const t0 = performance.now();
        const r = await post(`${svc.baseUrl}/v1/completions`, { model: modelId, prompt: "", max_tokens: 4 });
        assertEquals(r.status, 503);
        assert(performance.now() - t0 < 10_000, "fails fast");
      });
    } finally {
      await svc.stop();
      await nats.stop();
    }
  },
});
