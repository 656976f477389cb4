/**
 * Runs one batch line through a `Backend` and turns the outcome into a result record: the
 * completion body (as `/v1/completions` or `/v1/chat/completions` would answer, without
 * streaming) or the error body and its HTTP status. Never throws for a bad line: every
 * expected failure is a record for the error file.
 * @module
 */
import { nuid } from "@nats-io/nats-core";
import { asKvrelayError, badRequest, KvrelayError } from "../../shared/errors.ts";
import type { KvSettings } from "../../shared/handoff/contract.ts";
import { resolveKvSettings } from "../../shared/pipeline/kv_settings.ts";
import type { LineTask, ResultRecord } from "../../shared/batch/mod.ts";
import type { Backend, CompletionInput } from "../gateway/backend.ts";
import { parseCommon, parseMessages, parsePrompts } from "../gateway/validate.ts";
import { refuseUnsupported } from "../gateway/openai_params.ts";

export interface ExecuteOptions {
  backend: Backend;
  kvDefaults: KvSettings;
  /** The batch's `kv_compression`; a line's own one is merged over it. */
  batchKv?: unknown;
  maxTokensLimit: number;
  delivery: number;
  signal: AbortSignal;
}

function errorType(status: number): string {
  return status < 500 ? "invalid_request_error" : status === 503 ? "service_unavailable" : "server_error";
}

/** Runs `task` and returns its record; `response.status_code` 200 means success. */
export async function executeLine(task: LineTask, opts: ExecuteOptions): Promise<ResultRecord> {
  const base = {
    id: `batch_req_${nuid.next()}`,
    custom_id: task.customId,
    index: task.index,
    delivery: opts.delivery,
  };
  if (task.error || !task.url || !task.body) {
    return { ...base, response: null, error: task.error ?? { code: "invalid_line", message: "no request" } };
  }
  const chat = task.url === "/v1/chat/completions";
  const requestId = `${chat ? "chatcmpl" : "cmpl"}-${nuid.next()}`;
  try {
    const body = task.body;
    refuseUnsupported(body, chat ? "chat" : "text");
    const common = parseCommon(body, opts.maxTokensLimit, chat ? 256 : 16, chat ? "chat" : "text");
    if (common.stream) throw badRequest("'stream' is not supported in a batch", "stream");
    // A batch line runs one choice without log-probabilities (the gateway's routes do the rest).
    if (common.n > 1) throw badRequest("'n' > 1 is not supported in a batch line", "n");
    if (common.bestOf > 1) throw badRequest("'best_of' > 1 is not supported in a batch line", "best_of");
    if (common.echo) throw badRequest("'echo' is not supported in a batch line", "echo");
    if (common.sampling.logprobs !== undefined) {
      throw badRequest("'logprobs' is not supported in a batch line", "logprobs");
    }
    const prompts = chat ? [] : parsePrompts(body.prompt);
    if (prompts.length > 1) throw badRequest("a batch line takes one prompt", "prompt");
    const batchKv = resolveKvSettings(opts.kvDefaults, opts.batchKv);
    const input: CompletionInput = {
      requestId,
      sampling: common.sampling,
      kv: resolveKvSettings(batchKv, common.kvCompression),
      stop: common.stop,
      ...(chat ? { messages: parseMessages(body.messages) } : prompts[0]),
    };
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
    let text = "";
    for await (const ev of opts.backend.complete(input, opts.signal)) {
      if (ev.type === "text") {
        text += ev.text;
        continue;
      }
      const choice = chat
        ? {
          index: 0,
          message: { role: "assistant", content: text },
          logprobs: null,
          finish_reason: ev.finishReason,
        }
        : { index: 0, text, logprobs: null, finish_reason: ev.finishReason };
      return {
        ...base,
        response: {
          status_code: 200,
          request_id: requestId,
          body: {
            id: requestId,
            object: chat ? "chat.completion" : "text_completion",
            created,
            model: model.id,
            choices: [choice],
            usage: ev.usage,
          },
        },
        error: null,
      };
    }
    throw new KvrelayError("internal", "the completion ended without a result");
  } catch (err) {
    if (opts.signal.aborted) throw err; // the worker is stopping: leave the line for redelivery
    const e = asKvrelayError(err);
    return {
      ...base,
      response: {
        status_code: e.status,
        request_id: requestId,
        body: {
          error: { message: e.message, type: errorType(e.status), param: e.param ?? null, code: e.code },
        },
      },
      error: null,
    };
  }
}
