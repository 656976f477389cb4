/**
 * POST /v1/completions and /v1/chat/completions: check every parameter (openai_params.ts,
 * validate.ts), run each choice through the backend (choices.ts), answer as one JSON body or as
 * SSE chunks ending in `data: [DONE]`, in OpenAI's shapes (completion_body.ts).
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
import type { KvSettings, SamplingParams } from "../../shared/handoff/contract.ts";
import { resolveKvSettings } from "../../shared/pipeline/kv_settings.ts";
import type { Backend, ChatMessage, TokenOut } from "./backend.ts";
import {
  MAX_CHOICES,
  parseCommon,
  parseJsonBody,
  parseMessages,
  parsePrompts,
  type PromptInput,
} from "./validate.ts";
import { refuseUnsupported } from "./openai_params.ts";
import { bestChoices, type Choice, echoText, merged, newChoices, planRuns, sumUsage } from "./choices.ts";
import { chunkBody, finalBody, type Kind, roleChunk, usageChunk } from "./completion_body.ts";
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

export function completionHandler(kind: Kind, opts: CompletionRouteOptions) {
  return async function completions(c: Context): Promise<Response> {
    const body = parseJsonBody(await c.req.text());
    refuseUnsupported(body, kind);
    const common = parseCommon(body, opts.maxTokensLimit, kind === "chat" ? 256 : 16, kind);
    const model = await opts.backend.model();
    fitMaxTokens(common.sampling, maxTokensLimit(opts.maxTokensLimit, model.maxSeqLen));
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
    if (prompts.length * common.bestOf > MAX_CHOICES) {
      throw badRequest(
        `prompts × n (or best_of) may be at most ${MAX_CHOICES}`,
        common.bestOf > common.n ? "best_of" : "n",
      );
    }
    // best_of > n ranks candidates by their tokens' log-probabilities, so it needs them.
    const ranked = common.bestOf > common.n;
    const runs = planRuns(requestId, prompts, common.bestOf, {
      sampling: ranked ? { ...common.sampling, logprobs: common.sampling.logprobs ?? 0 } : common.sampling,
      kv: resolveKvSettings(opts.kvDefaults, common.kvCompression),
      stop: common.stop,
    });
    const echoes = common.echo ? await Promise.all(prompts.map((p) => echoText(opts.backend, p))) : [];
    const created = Math.floor(Date.now() / 1000);
    const abort = new AbortController();
    // Deno aborts the request's signal when the client goes away (and, harmlessly, once the
    // response has been delivered).
    const signal = AbortSignal.any([c.req.raw.signal, abort.signal]);
    const choices = newChoices(runs, echoes, common.sampling.logprobs !== undefined);
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
      // usage counts every candidate's tokens, as OpenAI bills best_of.
      const usage = sumUsage(choices);
      span?.setAttributes({
        [attr.INPUT_TOKENS]: usage.prompt_tokens,
        [attr.OUTPUT_TOKENS]: usage.completion_tokens,
      });
      return c.json(finalBody(shape, ranked ? bestChoices(choices, common.n) : choices, usage));
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
            await stream.writeSSE({ data: JSON.stringify({ ...roleChunk(shape, ch), ...usageField }) });
          } else if (ch.text) await chunk(ch, ch.text, undefined, null); // the echoed prompt
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
          await stream.writeSSE({ data: JSON.stringify(usageChunk(shape, sumUsage(choices))) });
        }
      } catch (err) {
        const res = errorResponse(c, err);
        await stream.writeSSE({ data: await res.text() });
      }
      await stream.writeSSE({ data: "[DONE]" });
    });
  };
}

/**
 * `max_tokens` within `limit`: one the client set beyond it is a 400; the default is cut to it.
 */
function fitMaxTokens(sampling: SamplingParams, limit: number): void {
  if (sampling.maxTokens <= limit) return;
  if (sampling.maxTokensAsked) {
    throw badRequest(`'max_tokens' must be an integer in [1, ${limit}]`, "max_tokens");
  }
  sampling.maxTokens = limit;
}

/** The tightest of the configured limit and the model's context (less one prompt token). */
function maxTokensLimit(configured: number, maxSeqLen: number): number {
  return maxSeqLen > 1 ? Math.min(configured, maxSeqLen - 1) : configured;
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
