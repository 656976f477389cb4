/**
 * POST /v1/completions and /v1/chat/completions: validate, run through the backend, answer
 * as one JSON body or as SSE chunks ending in `data: [DONE]`, in OpenAI's shapes.
 * @module
 */
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import { nuid } from "@nats-io/nats-core";
import { trace } from "@opentelemetry/api";
import { KvrelayError } from "../../shared/errors.ts";
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
}

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
    const events = opts.backend.complete(input, abort.signal);
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
      throw new KvrelayError("internal", "the completion ended without a result");
    }
    // Fail before the stream starts when the first step fails (e.g. no decode instance): a
    // client then sees a proper HTTP status, not an error inside a 200 stream.
    const iter = events[Symbol.asyncIterator]();
    const first = await iter.next();
    return streamSSE(c, async (stream) => {
      stream.onAbort(() => abort.abort());
      const chunk = (delta: unknown, finish: string | null, usage?: Usage) =>
        stream.writeSSE({
          data: JSON.stringify(chunkBody(kind, input.requestId, created, model.id, delta, finish, usage)),
        });
      try {
        if (kind === "chat") await chunk({ role: "assistant", content: "" }, null);
        for (let r = first; !r.done; r = await iter.next()) {
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
