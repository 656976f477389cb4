/**
 * POST /v1/completions and /v1/chat/completions: validate, run through the backend, answer
 * as one JSON body or as SSE chunks ending in `data: [DONE]`, in OpenAI's shapes.
 *
 * A client that goes away cancels its work, streaming or not (the request's own `signal`,
 * which Deno aborts when the connection closes). A stream whose first token takes longer than
 * `sseKeepAliveMs` starts anyway, and carries a `: keep-alive` comment every `sseKeepAliveMs`
 * while it waits, so proxies and clients do not give up on it.
 * @module
 */
import type { Context } from "hono";
import { type SSEStreamingApi, streamSSE } from "hono/streaming";
import { nuid } from "@nats-io/nats-core";
import { trace } from "@opentelemetry/api";
import { badRequest, KvrelayError } from "../../shared/errors.ts";
import { DEFAULTS } from "../../shared/config/mod.ts";
import type { KvSettings } from "../../shared/handoff/contract.ts";
import { resolveKvSettings } from "../../shared/pipeline/kv_settings.ts";
import type { Backend, ChatMessage, CompletionEvent, CompletionInput, TokenOut, Usage } from "./backend.ts";
import {
  MAX_CHOICES,
  parseCommon,
  parseJsonBody,
  parseMessages,
  parsePrompts,
  type PromptInput,
} from "./validate.ts";
import { refuseUnsupported } from "./openai_params.ts";
import { chatLogprobs, completionLogprobs } from "./logprobs_format.ts";
import { errorResponse } from "./openai_error.ts";
import { attr } from "../../shared/telemetry/mod.ts";

export interface CompletionRouteOptions {
  backend: Backend;
  kvDefaults: KvSettings;
  maxTokensLimit: number;
  /** A waiting stream gets a `: keep-alive` comment this often (default `DEFAULTS.sseKeepAliveMs`). */
  sseKeepAliveMs?: number;
}

/** The status nginx uses for a client that closed the connection; nobody reads it. */
const CLIENT_GONE = 499;

type Kind = "text" | "chat";

export function completionHandler(kind: Kind, opts: CompletionRouteOptions) {
  return async function completions(c: Context): Promise<Response> {
    const body = parseJsonBody(await c.req.text());
    refuseUnsupported(body, kind);
    if (typeof body.model !== "string" || !body.model) {
      throw badRequest("'model' is required and must be a string", "model");
    }
    const model = await opts.backend.model();
    const common = parseCommon(
      body,
      maxTokensLimit(opts.maxTokensLimit, model.maxSeqLen),
      kind === "chat" ? 256 : 16,
      kind,
    );
    const asIds = body.return_tokens_as_token_ids;
    if (asIds !== undefined && asIds !== null && typeof asIds !== "boolean") {
      throw badRequest("'return_tokens_as_token_ids' must be a boolean", "return_tokens_as_token_ids");
    }
    const requestId = `${kind === "chat" ? "chatcmpl" : "cmpl"}-${nuid.next()}`;
    // Deno's server span of this request (the trace root unless the client sent `traceparent`).
    const span = trace.getActiveSpan();
    span?.setAttributes({ [attr.REQUEST_ID]: requestId, [attr.MODEL]: common.model });
    if (common.model !== model.id) {
      throw new KvrelayError(
        "not_found",
        `the model '${common.model}' does not exist; this server has '${model.id}'`,
        { param: "model" },
      );
    }
    const prompts: PromptInput[] | [{ messages: ChatMessage[] }] = kind === "chat"
      ? [{ messages: parseMessages(body.messages) }]
      : parsePrompts(body.prompt);
    if (prompts.length * common.n > MAX_CHOICES) {
      throw badRequest(`prompts × n may be at most ${MAX_CHOICES}`, "n");
    }
    const kv = resolveKvSettings(opts.kvDefaults, common.kvCompression);
    // OpenAI's order: the n choices of the first prompt, then those of the next.
    const runs: Run[] = prompts.flatMap((p, pi) =>
      Array.from({ length: common.n }, (_, j) => {
        const index = pi * common.n + j;
        return {
          index,
          prompt: pi,
          input: {
            requestId: index === 0 ? requestId : `${requestId}-c${index}`,
            sampling: { ...common.sampling, seed: choiceSeed(common.sampling.seed, j) },
            kv,
            stop: common.stop,
            ...p,
          },
        };
      })
    );
    const echoes = common.echo ? await Promise.all(prompts.map((p) => echoText(opts.backend, p))) : [];
    const created = Math.floor(Date.now() / 1000);
    const abort = new AbortController();
    // Deno aborts the request's signal when the client goes away (and, harmlessly, once the
    // response has been delivered).
    const signal = AbortSignal.any([c.req.raw.signal, abort.signal]);
    const choices: Choice[] = runs.map((r) => ({
      index: r.index,
      prompt: r.prompt,
      text: echoes[r.prompt] ?? "",
      tokens: [],
      wantLogprobs: common.sampling.logprobs !== undefined,
    }));
    const shape = { kind, id: requestId, created, model: model.id, tokenIds: asIds === true };
    const events = merged(runs.map((r) => opts.backend.complete(r.input, signal)), abort);
    if (!common.stream) {
      for await (const { index, ev } of events) {
        const ch = choices[index];
        if (ev.type === "text") {
          ch.text += ev.text;
          if (ev.tokens) ch.tokens.push(...ev.tokens);
        } else ch.done = ev;
      }
      if (signal.aborted) return new Response(null, { status: CLIENT_GONE });
      if (choices.some((ch) => !ch.done)) {
        throw new KvrelayError("internal", "the completion ended without a result");
      }
      const usage = sumUsage(choices);
      span?.setAttributes({
        [attr.INPUT_TOKENS]: usage.prompt_tokens,
        [attr.OUTPUT_TOKENS]: usage.completion_tokens,
      });
      return c.json(finalBody(shape, choices, usage));
    }
    // Fail before the stream starts when the first step fails (e.g. no decode instance, or
    // decode full): a client then sees a proper HTTP status, not an error inside a 200 stream.
    // A first token slower than a keep-alive interval starts the stream without it.
    const keepAliveMs = opts.sseKeepAliveMs ?? DEFAULTS.sseKeepAliveMs;
    const iter = events[Symbol.asyncIterator]();
    // Each pull is awaited below; a stream that breaks off leaves one unawaited, whose failure
    // must not become an unhandled rejection.
    const pull = () => {
      const p = iter.next();
      p.catch(() => {});
      return p;
    };
    let next = pull();
    const early = await settledWithin(next, keepAliveMs);
    if (early && !early.ok) throw early.error;
    return streamSSE(c, async (stream) => {
      stream.onAbort(() => abort.abort());
      const usageField = common.includeUsage ? { usage: null } : {};
      const chunk = (ch: Choice, delta: string, tokens: TokenOut[] | undefined, finish: string | null) =>
        stream.writeSSE({
          data: JSON.stringify({ ...chunkBody(shape, ch, delta, tokens, finish), ...usageField }),
        });
      try {
        for (const ch of choices) {
          if (kind === "chat") {
            await stream.writeSSE({
              data: JSON.stringify({
                ...chunkBody(shape, ch, "", undefined, null),
                choices: [{
                  index: ch.index,
                  delta: { role: "assistant", content: "" },
                  logprobs: null,
                  finish_reason: null,
                }],
                ...usageField,
              }),
            });
          } else if (ch.text) await chunk(ch, ch.text, undefined, null);
        }
        while (true) {
          const r = await keptAlive(next, stream, keepAliveMs);
          if (r.done) break;
          next = pull();
          const { index, ev } = r.value;
          const ch = choices[index];
          if (ev.type === "text") {
            await chunk(ch, ev.text, ev.tokens, null);
            ch.offset = (ch.offset ?? ch.text.length) + ev.text.length;
          } else {
            ch.done = ev;
            await chunk(ch, "", undefined, ev.finishReason);
          }
        }
        if (common.includeUsage && choices.every((ch) => ch.done)) {
          await stream.writeSSE({
            data: JSON.stringify({
              ...chunkBody(shape, choices[0], "", undefined, null),
              choices: [],
              usage: sumUsage(choices),
            }),
          });
        }
      } catch (err) {
        const res = errorResponse(c, err);
        await stream.writeSSE({ data: await res.text() });
      }
      await stream.writeSSE({ data: "[DONE]" });
    });
  };
}

interface Run {
  index: number;
  prompt: number;
  input: CompletionInput;
}

/** One choice as it is built. */
interface Choice {
  index: number;
  prompt: number;
  /** So far (the echoed prompt first, when asked). */
  text: string;
  tokens: TokenOut[];
  wantLogprobs: boolean;
  /** Streaming: where the next piece starts in the choice's text. */
  offset?: number;
  done?: Extract<CompletionEvent, { type: "done" }>;
}

/** The tightest of the configured limit and the model's context (less one prompt token). */
function maxTokensLimit(configured: number, maxSeqLen: number): number {
  return maxSeqLen > 1 ? Math.min(configured, maxSeqLen - 1) : configured;
}

/** Choice j of n: the request's seed plus j, so the choices differ and each repeats. */
function choiceSeed(seed: number | undefined, j: number): number | undefined {
  if (j === 0) return seed;
  const s = (seed ?? 0x5eed) + j;
  return s > Number.MAX_SAFE_INTEGER ? (seed ?? 0) - j : s;
}

async function echoText(backend: Backend, p: PromptInput | { messages: ChatMessage[] }): Promise<string> {
  if ("messages" in p) return "";
  return p.prompt ?? await backend.detokenize(p.promptIds ?? []);
}

/** Events of every run as they come, tagged with the run's index; a failure aborts the rest. */
async function* merged(
  streams: AsyncIterable<CompletionEvent>[],
  abort: AbortController,
): AsyncIterable<{ index: number; ev: CompletionEvent }> {
  const iters = streams.map((s) => s[Symbol.asyncIterator]());
  const pulls = new Map<number, Promise<{ index: number; r: IteratorResult<CompletionEvent> }>>();
  const pull = (index: number) => {
    const p = iters[index].next().then((r) => ({ index, r }));
    p.catch(() => {});
    pulls.set(index, p);
  };
  iters.forEach((_, i) => pull(i));
  try {
    while (pulls.size) {
      const { index, r } = await Promise.race(pulls.values());
      if (r.done) {
        pulls.delete(index);
        continue;
      }
      pull(index);
      yield { index, ev: r.value };
    }
  } catch (err) {
    abort.abort();
    throw err;
  }
}

/** Usage over every choice: each prompt's tokens once, every choice's completion tokens. */
function sumUsage(choices: Choice[]): Usage {
  const first = new Map<number, Usage>();
  let completion = 0;
  for (const ch of choices) {
    const u = ch.done!.usage;
    if (!first.has(ch.prompt)) first.set(ch.prompt, u);
    completion += u.completion_tokens;
  }
  let prompt = 0;
  for (const u of first.values()) prompt += u.prompt_tokens;
  // usage.kv describes the first choice's hand-off (every choice of a prompt hands off alike).
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    kv: choices[0].done!.usage.kv,
  };
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** The outcome of `p` if it settles within `ms`; undefined otherwise. */
async function settledWithin<T>(p: Promise<T>, ms: number): Promise<Settled<T> | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((resolve) => timer = setTimeout(() => resolve(undefined), ms));
  try {
    return await Promise.race([
      p.then((value): Settled<T> => ({ ok: true, value }), (error): Settled<T> => ({ ok: false, error })),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Awaits `p`, writing a `: keep-alive` comment to the stream every `ms` until it settles. */
async function keptAlive<T>(p: Promise<T>, stream: SSEStreamingApi, ms: number): Promise<T> {
  while (true) {
    const r = await settledWithin(p, ms);
    if (r?.ok) return r.value;
    if (r) throw r.error;
    if (stream.aborted || stream.closed) return await p;
    await stream.write(": keep-alive\n\n");
  }
}

interface Shape {
  /** vLLM's `return_tokens_as_token_ids`: log-probability tokens read `token_id:<id>`. */
  tokenIds: boolean;
  kind: Kind;
  id: string;
  created: number;
  model: string;
}

function logprobsOf(s: Shape, tokens: TokenOut[] | undefined, offset: number) {
  if (!tokens) return null;
  const name = s.tokenIds ? (id: number) => `token_id:${id}` : undefined;
  return s.kind === "chat"
    ? { content: chatLogprobs(tokens, name), refusal: null }
    : completionLogprobs(tokens, offset, name);
}

function finalBody(s: Shape, choices: Choice[], usage: Usage) {
  return {
    id: s.id,
    object: s.kind === "chat" ? "chat.completion" : "text_completion",
    created: s.created,
    model: s.model,
    choices: choices.map((ch) => {
      const lp = ch.wantLogprobs
        ? logprobsOf(s, ch.tokens, ch.text.length - ch.tokens.reduce((n, t) => n + t.text.length, 0))
        : null;
      const finish = ch.done!.finishReason;
      return s.kind === "chat"
        ? {
          index: ch.index,
          message: { role: "assistant", content: ch.text },
          logprobs: lp,
          finish_reason: finish,
        }
        : { index: ch.index, text: ch.text, logprobs: lp, finish_reason: finish };
    }),
    usage,
  };
}

function chunkBody(
  s: Shape,
  ch: Choice,
  delta: string,
  tokens: TokenOut[] | undefined,
  finish: string | null,
) {
  const lp = ch.wantLogprobs && tokens ? logprobsOf(s, tokens, ch.offset ?? ch.text.length) : null;
  const choice = s.kind === "chat"
    ? { index: ch.index, delta: finish ? {} : { content: delta }, logprobs: lp, finish_reason: finish }
    : { index: ch.index, text: delta, logprobs: lp, finish_reason: finish };
  return {
    id: s.id,
    object: s.kind === "chat" ? "chat.completion.chunk" : "text_completion",
    created: s.created,
    model: s.model,
    choices: [choice],
  };
}
