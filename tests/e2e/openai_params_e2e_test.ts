/**
 * Every OpenAI parameter kvrelay knows, driven through the official `openai` SDK against the
 * real services on stories260K: the honoured ones with an observable effect, the refused ones
 * as a 400 naming the parameter (services/gateway/openai_params.ts).
 */
import { assert, assertEquals, assertNotEquals, assertRejects } from "@std/assert";
import OpenAI from "openai";
import { startNatsServer } from "../_harness/nats_server.ts";
import { startServices } from "../_harness/services.ts";
import { STORIES260K } from "../_harness/paths.ts";
import { OPENAI_PARAMS } from "../../services/gateway/openai_params.ts";

const ENV = { KVRELAY_MODEL: STORIES260K.model, KVRELAY_TOKENIZER: STORIES260K.tokenizer };
const PROMPT = "Lily and Ben";
const REPEAT = "the cat and the cat and the cat and the cat and the";

/** The token ids of a completion, through vLLM's `return_tokens_as_token_ids`. */
const ids = (tokens: string[]) => tokens.map((t) => Number(t.replace("token_id:", "")));

Deno.test({
  name: "openai SDK: every known parameter is honoured with an effect or refused by name",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const nats = await startNatsServer();
    const svc = await startServices(nats, ENV);
    const client = new OpenAI({ baseURL: `${svc.baseUrl}/v1`, apiKey: "unused", maxRetries: 0 });
    // The SDK's types know OpenAI's parameters only, not vLLM's extras: plain bodies, loose replies.
    // deno-lint-ignore no-explicit-any
    type Loose = any;
    const complete = (body: Record<string, unknown>): Promise<Loose> =>
      client.completions.create(body as Loose);
    const chat = (body: Record<string, unknown>): Promise<Loose> =>
      client.chat.completions.create(body as Loose);
    try {
      const model = (await client.models.list()).data[0].id;
      const greedy = { model, prompt: PROMPT, temperature: 0, max_tokens: 12 };

      await t.step("logprobs: consistent, chosen token is the most likely at temperature 0", async () => {
        const r = await complete({ ...greedy, logprobs: 3 });
        const lp = r.choices[0].logprobs;
        assertEquals(lp.tokens.join(""), r.choices[0].text);
        assertEquals(lp.tokens.length, r.usage.completion_tokens);
        for (const [i, top] of lp.top_logprobs.entries()) {
          const best = Math.max(...Object.values(top as Record<string, number>));
          assertEquals(lp.token_logprobs[i], best);
          assert(lp.token_logprobs[i] <= 0);
        }
        let off = 0;
        for (const [i, tok] of lp.tokens.entries()) {
          assertEquals(lp.text_offset[i], off);
          off += tok.length;
        }
        const c = await chat({
          model,
          messages: [{ role: "user", content: PROMPT }],
          temperature: 0,
          max_tokens: 6,
          logprobs: true,
          top_logprobs: 2,
        });
        const content = c.choices[0].logprobs.content;
        assertEquals(content.map((e: { token: string }) => e.token).join(""), c.choices[0].message.content);
        for (const e of content) {
          assertEquals(e.top_logprobs.length, 2);
          assertEquals(e.logprob, e.top_logprobs[0].logprob);
          assertEquals(e.bytes, Array.from(new TextEncoder().encode(e.token)));
        }
      });

      await t.step("logprobs while streaming add up to the text", async () => {
        const stream = await complete({ ...greedy, logprobs: 1, stream: true });
        let text = "";
        const toks: string[] = [];
        for await (const ch of stream) {
          text += ch.choices[0]?.text ?? "";
          toks.push(...(ch.choices[0]?.logprobs?.tokens ?? []));
        }
        assertEquals(toks.join(""), text);
        assertEquals(text, (await complete(greedy)).choices[0].text);
      });

      await t.step("logit_bias -100 on the greedy first token changes it", async () => {
        const r = await complete({ ...greedy, logprobs: 0, return_tokens_as_token_ids: true });
        const first = ids(r.choices[0].logprobs.tokens)[0];
        const banned = await complete({
          ...greedy,
          logprobs: 0,
          return_tokens_as_token_ids: true,
          logit_bias: { [String(first)]: -100 },
        });
        const got = ids(banned.choices[0].logprobs.tokens);
        assertNotEquals(got[0], first);
        assert(!got.includes(first), `banned token ${first} came back: ${got}`);
      });

      await t.step("penalties change the output of a repetitive prompt", async () => {
        const base = { model, prompt: REPEAT, temperature: 0, max_tokens: 24 };
        const plain = (await complete(base)).choices[0].text;
        for (const p of [{ frequency_penalty: 2 }, { presence_penalty: 2 }, { repetition_penalty: 1.8 }]) {
          const text = (await complete({ ...base, ...p })).choices[0].text;
          assertNotEquals(text, plain, JSON.stringify(p));
        }
      });

      await t.step("top_k = 1 and min_p = 1 are greedy whatever the temperature", async () => {
        const text = (await complete(greedy)).choices[0].text;
        assertEquals(
          (await complete({ ...greedy, temperature: 2, seed: 11, top_k: 1 })).choices[0].text,
          text,
        );
        assertEquals(
          (await complete({ ...greedy, temperature: 2, seed: 11, min_p: 1 })).choices[0].text,
          text,
        );
        assertNotEquals((await complete({ ...greedy, temperature: 2, seed: 11 })).choices[0].text, text);
      });

      await t.step("n = 3 with a seed gives 3 choices, repeatable, not all alike", async () => {
        const body = { model, prompt: PROMPT, temperature: 1, max_tokens: 10, n: 3, seed: 7 };
        const a = await complete(body);
        assertEquals(a.choices.map((c: { index: number }) => c.index), [0, 1, 2]);
        const texts = a.choices.map((c: { text: string }) => c.text);
        assert(new Set(texts).size > 1, JSON.stringify(texts));
        const b = await complete(body);
        assertEquals(b.choices.map((c: { text: string }) => c.text), texts);
      });

      await t.step("best_of returns the candidate with the highest log-probability per token", async () => {
        const body = { model, prompt: PROMPT, temperature: 1, max_tokens: 10, seed: 21 };
        // The same three candidates (seed + i), shown with their log-probabilities.
        const all = await complete({ ...body, n: 3, logprobs: 0 });
        const mean = (c: { logprobs: { token_logprobs: number[] } }) =>
          c.logprobs.token_logprobs.reduce((a, b) => a + b, 0) / c.logprobs.token_logprobs.length;
        const best = [...all.choices].sort((a, b) => mean(b) - mean(a))[0];
        const r = await complete({ ...body, best_of: 3 });
        assertEquals(r.choices.length, 1);
        assertEquals(r.choices[0].index, 0);
        assertEquals(r.choices[0].text, best.text);
        assertEquals(r.choices[0].logprobs, null);
        assertEquals(r.usage.completion_tokens, all.usage.completion_tokens);
        const two = await complete({ ...body, best_of: 3, n: 2 });
        assertEquals(two.choices.map((c: { index: number }) => c.index), [0, 1]);
      });

      await t.step("a list of prompts gives each prompt's n choices, in order", async () => {
        const one = (await complete({ ...greedy, prompt: PROMPT })).choices[0].text;
        const two = (await complete({ ...greedy, prompt: "Once upon a time" })).choices[0].text;
        const r = await complete({ ...greedy, prompt: [PROMPT, "Once upon a time"], n: 2 });
        assertEquals(r.choices.map((c: { index: number }) => c.index), [0, 1, 2, 3]);
        assertEquals(r.choices.map((c: { text: string }) => c.text), [one, one, two, two]);
        const tokenized = await (await fetch(`${svc.baseUrl}/tokenize`, {
          method: "POST",
          body: JSON.stringify({ prompt: PROMPT }),
        })).json();
        const byIds = await complete({ ...greedy, prompt: [tokenized.tokens] });
        assertEquals(byIds.choices[0].text, one);
      });

      await t.step("ignore_eos and min_tokens outlast EOS; stop_token_ids stops", async () => {
        // llama2.c's BOS (1) and EOS (2) end a story; a bias of 100 makes them come first.
        const ending = {
          model,
          prompt: PROMPT,
          temperature: 0,
          max_tokens: 30,
          logit_bias: { "1": 100, "2": 100 },
        };
        const plain = await complete(ending);
        assertEquals(plain.choices[0].finish_reason, "stop");
        assertEquals(plain.usage.completion_tokens, 0);
        const ignored = await complete({ ...ending, ignore_eos: true, logit_bias: { "2": 100 } });
        assertEquals(ignored.usage.completion_tokens, 30);
        assertEquals(ignored.choices[0].finish_reason, "length");
        const min = await complete({ ...ending, min_tokens: 7 });
        assertEquals(min.usage.completion_tokens, 7);
        assertEquals(min.choices[0].finish_reason, "stop");
        const r = await complete({ ...greedy, logprobs: 0, return_tokens_as_token_ids: true });
        const toks = ids(r.choices[0].logprobs.tokens);
        const k = toks.findIndex((id, i) => i >= 2 && !toks.slice(0, i).includes(id));
        const stopped = await complete({ ...greedy, stop_token_ids: [toks[k]] });
        assertEquals(stopped.usage.completion_tokens, k);
        assertEquals(stopped.choices[0].finish_reason, "stop");
      });

      await t.step("echo starts the text with the prompt, given as text or as token ids", async () => {
        const plain = (await complete(greedy)).choices[0].text;
        assertEquals((await complete({ ...greedy, echo: true })).choices[0].text, PROMPT + plain);
        const ids = await (await fetch(`${svc.baseUrl}/tokenize`, {
          method: "POST",
          body: JSON.stringify({ prompt: PROMPT }),
        })).json();
        assertEquals(
          (await complete({ ...greedy, prompt: ids.tokens, echo: true })).choices[0].text,
          PROMPT + plain,
        );
      });

      await t.step("n = 2 streams both choices by index, each as its own request would", async () => {
        const body = { model, prompt: PROMPT, temperature: 1, max_tokens: 8, n: 2, seed: 3 };
        const whole = await complete(body);
        const texts = ["", ""];
        const finishes: (string | null)[] = [null, null];
        for await (const ch of await complete({ ...body, stream: true })) {
          for (const c of ch.choices) {
            texts[c.index] += c.text;
            finishes[c.index] ??= c.finish_reason;
          }
        }
        assertEquals(texts, whole.choices.map((c: { text: string }) => c.text));
        assertEquals(finishes, whole.choices.map((c: { finish_reason: string }) => c.finish_reason));
      });

      await t.step("a stop string cuts the logprobs with the text", async () => {
        const full = (await complete({ ...greedy, max_tokens: 16 })).choices[0].text as string;
        const stop = full.slice(6, 9);
        const r = await complete({ ...greedy, max_tokens: 16, stop: [stop], logprobs: 1 });
        const text = r.choices[0].text as string;
        assertEquals(text, full.slice(0, full.indexOf(stop)));
        const toks = r.choices[0].logprobs.tokens as string[];
        // every token that starts in the text is there, and nothing after it
        assert(toks.join("").startsWith(text), `${JSON.stringify(toks)} vs ${JSON.stringify(text)}`);
        assert(toks.slice(0, -1).join("").length < text.length || toks.join("") === text);
      });

      await t.step("usage in stream chunks only with stream_options.include_usage", async () => {
        const without = await complete({ ...greedy, stream: true });
        for await (const ch of without) assertEquals(ch.usage ?? null, null);
        const withUsage = await complete({
          ...greedy,
          stream: true,
          stream_options: { include_usage: true },
        });
        const chunks = [];
        for await (const ch of withUsage) chunks.push(ch);
        const last = chunks.at(-1);
        assertEquals(last.choices, []);
        assertEquals(last.usage.completion_tokens, 12);
        for (const ch of chunks.slice(0, -1)) assertEquals(ch.usage, null);
      });

      await t.step(
        "chat accepts an assistant turn with tool_calls and null content, and a tool turn",
        async () => {
          const r = await chat({
            model,
            max_tokens: 4,
            messages: [
              { role: "user", content: "What is the weather?" },
              {
                role: "assistant",
                content: null,
                tool_calls: [{ id: "c1", type: "function", function: { name: "weather", arguments: "{}" } }],
              },
              { role: "tool", tool_call_id: "c1", content: "sunny" },
            ],
          });
          assertEquals(r.choices[0].message.role, "assistant");
        },
      );

      await t.step("/tokenize and /detokenize round-trip; /v1/models/{id}", async () => {
        const post = async (path: string, body: unknown) =>
          await (await fetch(`${svc.baseUrl}${path}`, { method: "POST", body: JSON.stringify(body) })).json();
        const tk = await post("/tokenize", { prompt: "One day, a big dog ran." });
        assertEquals(tk.count, tk.tokens.length);
        assertEquals(tk.max_model_len, 512);
        assertEquals((await post("/detokenize", { tokens: tk.tokens })).prompt, "One day, a big dog ran.");
        const msgs = await post("/tokenize", { messages: [{ role: "user", content: "hi" }] });
        assert(msgs.count > 1);
        assertEquals((await client.models.retrieve(model)).id, model);
        const err = await assertRejects(() => client.models.retrieve("nope"), OpenAI.NotFoundError);
        assertEquals((err.error as { type: string }).type, "invalid_request_error");
      });

      await t.step("prompt + max_tokens beyond the context is a 400 naming max_tokens", async () => {
        const err = await assertRejects(
          () => complete({ ...greedy, max_tokens: 510 }),
          OpenAI.BadRequestError,
        );
        assertEquals(err.param, "max_tokens");
        assertEquals((await complete({ ...greedy, max_tokens: 500 })).choices.length, 1);
      });

      await t.step("token ids outside the vocabulary are a 400 naming where they came from", async () => {
        const cases: [string, Record<string, unknown>][] = [
          ["logit_bias", { logit_bias: { "512": -100 } }],
          ["stop_token_ids", { stop_token_ids: [9999] }],
          ["prompt", { prompt: [1, 600] }],
        ];
        for (const [param, extra] of cases) {
          const err = await assertRejects(() => complete({ ...greedy, ...extra }), OpenAI.BadRequestError);
          assertEquals(err.param, param);
        }
      });

      await t.step("every refusal is a 400 naming the parameter", async () => {
        const text = { model, prompt: PROMPT, max_tokens: 2 };
        const msgs = { model, messages: [{ role: "user", content: "hi" }], max_tokens: 2 };
        const refusals: [string, Record<string, unknown>, "text" | "chat"][] = [
          ["best_of", { best_of: 2, stream: true }, "text"],
          ["suffix", { suffix: "and then" }, "text"],
          ["echo", { echo: true, logprobs: 1 }, "text"],
          ["presence_penalty", { presence_penalty: 3 }, "text"],
          ["frequency_penalty", { frequency_penalty: -2.5 }, "chat"],
          ["repetition_penalty", { repetition_penalty: -1 }, "text"],
          ["logit_bias", { logit_bias: { "3": 200 } }, "chat"].map((x, i) =>
            i === 0 ? "logit_bias.3" : x
          ) as [
            string,
            Record<string, unknown>,
            "chat",
          ],
          ["top_logprobs", { top_logprobs: 2 }, "chat"],
          ["tools", { tools: [{ type: "function", function: { name: "f" } }] }, "chat"],
          ["tool_choice", { tool_choice: "required" }, "chat"],
          ["parallel_tool_calls", { parallel_tool_calls: true }, "chat"],
          ["functions", { functions: [{ name: "f" }] }, "chat"],
          ["function_call", { function_call: "auto" }, "chat"],
          ["response_format", { response_format: { type: "json_object" } }, "chat"],
          ["modalities", { modalities: ["text", "audio"] }, "chat"],
          ["audio", { audio: { voice: "alloy", format: "mp3" } }, "chat"],
          ["prediction", { prediction: { type: "content", content: "x" } }, "chat"],
          ["web_search_options", { web_search_options: {} }, "chat"],
          ["reasoning_effort", { reasoning_effort: "low" }, "chat"],
          ["service_tier", { service_tier: "flex" }, "chat"],
          ["store", { store: true }, "chat"],
          ["stream_options", { stream_options: { include_usage: true } }, "chat"],
          ["echo", { echo: true }, "chat"],
          ["top_k", { top_k: -2 }, "text"],
          ["min_p", { min_p: 1.5 }, "text"],
          ["use_beam_search", { use_beam_search: true }, "text"],
          ["verbosity", { verbosity: "low" }, "chat"],
        ];
        for (const [param, extra, kind] of refusals) {
          const call = kind === "text" ? complete({ ...text, ...extra }) : chat({ ...msgs, ...extra });
          const err = await assertRejects(() => call, OpenAI.BadRequestError, undefined, param);
          assertEquals(err.param, param, `${param}: ${err.message}`);
        }
        // Values that ask for nothing missing pass.
        const ok = await chat({
          ...msgs,
          tools: [],
          tool_choice: "none",
          response_format: { type: "text" },
          modalities: ["text"],
          service_tier: "auto",
          store: false,
          user: "u1",
          metadata: { a: "b" },
        });
        assertEquals(ok.choices.length, 1);
        assertEquals((await complete({ ...text, best_of: 1, suffix: "" })).choices.length, 1);
        // The table's refusals are all covered above.
        const refused = Object.entries(OPENAI_PARAMS).filter(([, r]) => r.handling === "refused").map(([k]) =>
          k
        );
        const covered = new Set(
          refusals.map(([p]) => p.split(".")[0]),
        );
        for (const p of refused) assert(covered.has(p), `${p} has no refusal case`);
      });
    } finally {
      await svc.stop();
      await nats.stop();
    }
  },
});
