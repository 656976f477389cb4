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
import { KvrelayError } from "../../shared/errors.ts";
import { DEFAULTS } from "../../shared/config/mod.ts";
import type { KvSettings } from "../../shared/handoff/contract.ts";
import { resolveKvSettings } from "../../shared/pipeline/kv_settings.ts";
import type { Backend, CompletionInput, Usage } from "./backend.ts";
import { parseCommon, parseJsonBody, parseMessages, parsePrompt } from "./validate.ts";
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
    const common = parseCommon(body, opts.maxTokensLimit, kind === "chat" ? 256 : 16);
    const input: CompletionInput = {
      requestId: `${kind === "chat" ? "chatcmpl" : "cmpl"}-${nuid.next()}`,
      sampling: common.sampling,
      kv: resolveKvSettings(opts.kvDefaults, common.kvCompression),
      stop: common.stop,
      ...(kind === "chat" ? { messages: parseMessages(body.messages) } : parsePrompt(body.prompt)),
    };
    // Deno's server span of this request (the trace root unless the client sent `traceparent`).
    const span = trace.getActiveSpan();
    span?.setAttributes({ [attr.REQUEST_ID]: input.requestId, [attr.MODEL]: common.model });
    const model = await opts.backend.model();
    if (common.model !== model.id) {
      throw new KvrelayError(
        "not_found",
        `the model '${common.model}' does not exist; this server has '${model.id}'`,
        {
          param: "model",
        },
      );
    }
    const created = Math.floor(Date.now() / 1000);
    const abort = new AbortController();
    // Deno aborts the request's signal when the client goes away (and, harmlessly, once the
    // response has been delivered).
    const signal = AbortSignal.any([c.req.raw.signal, abort.signal]);
    const events = opts.backend.complete(input, signal);
    if (!common.stream) {
      let text = "";
      for await (const ev of events) {
        if (ev.type === "text") text += ev.text;
        else {
          span?.setAttributes({
            [attr.INPUT_TOKENS]: ev.usage.prompt_tokens,
            [attr.OUTPUT_TOKENS]: ev.usage.completion_tokens,
          });
          return c.json(
            finalBody(kind, input.requestId, created, model.id, text, ev.finishReason, ev.usage),
          );
        }
      }
      if (signal.aborted) return new Response(null, { status: CLIENT_GONE });
      throw new KvrelayError("internal", "the completion ended without a result");
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
      const chunk = (delta: unknown, finish: string | null, usage?: Usage) =>
        stream.writeSSE({
          data: JSON.stringify(chunkBody(kind, input.requestId, created, model.id, delta, finish, usage)),
        });
      try {
        if (kind === "chat") await chunk({ role: "assistant", content: "" }, null);
        while (true) {
          const r = await keptAlive(next, stream, keepAliveMs);
          if (r.done) break;
          next = pull();
          const ev = r.value;
          if (ev.type === "text") await chunk(kind === "chat" ? { content: ev.text } : ev.text, null);
          else {
            await chunk(kind === "chat" ? {} : "", ev.finishReason, ev.usage);
            if (common.includeUsage) {
              await stream.writeSSE({
                data: JSON.stringify({
                  ...chunkBody(kind, input.requestId, created, model.id, null, null),
                  choices: [],
                  usage: ev.usage,
                }),
              });
            }
          }
        }
      } catch (err) {
        const res = errorResponse(c, err);
        await stream.writeSSE({ data: await res.text() });
      }
      await stream.writeSSE({ data: "[DONE]" });
    });
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

function finalBody(
  kind: Kind,
  id: string,
  created: number,
  model: string,
  text: string,
  finish: string,
  usage: Usage,
) {
  const choice = kind === "chat"
    ? { index: 0, message: { role: "assistant", content: text }, logprobs: null, finish_reason: finish }
    : { index: 0, text, logprobs: null, finish_reason: finish };
  return {
    id,
    object: kind === "chat" ? "chat.completion" : "text_completion",
    created,
    model,
    choices: [choice],
    usage,
  };
}

function chunkBody(
  kind: Kind,
  id: string,
  created: number,
  model: string,
  delta: unknown,
  finish: string | null,
  usage?: Usage,
) {
  const choice = kind === "chat"
    ? { index: 0, delta, logprobs: null, finish_reason: finish }
    : { index: 0, text: delta, logprobs: null, finish_reason: finish };
  return {
    id,
    object: kind === "chat" ? "chat.completion.chunk" : "text_completion",
    created,
    model,
    choices: [choice],
    ...(usage ? { usage } : {}),
  };
}
