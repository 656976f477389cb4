/**
 * Validation of OpenAI-style request bodies: each field checked for type and range, with the
 * offending field named in the 400. What kvrelay does with every known field is in
 * openai_params.ts; unknown fields are ignored, as OpenAI clients send many.
 * @module
 */
import { badRequest } from "../../shared/errors.ts";
import type { SamplingParams } from "../../shared/handoff/contract.ts";
import type { ChatMessage } from "./backend.ts";

export interface CommonParams {
  model: string;
  stream: boolean;
  includeUsage: boolean;
  sampling: SamplingParams;
  stop: string[];
  kvCompression: unknown;
  /** Choices per prompt. */
  n: number;
  /** Completions only: candidates per prompt, of which the best `n` are returned (≥ n). */
  bestOf: number;
  /** Completions only: the prompt's text starts each choice. */
  echo: boolean;
}

/** Most choices one request may ask for (prompts × n). */
export const MAX_CHOICES = 64;

const given = (v: unknown) => v !== undefined && v !== null;

function int(v: unknown, name: string, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw badRequest(`'${name}' must be an integer in [${min}, ${max}]`, name);
  }
  return v;
}

function num(v: unknown, name: string, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max) {
    throw badRequest(`'${name}' must be a number in [${min}, ${max}]`, name);
  }
  return v;
}

export function parseJsonBody(text: string): Record<string, unknown> {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw badRequest("the request body is not valid JSON");
  }
  if (!body || typeof body !== "object" || Array.isArray(body)) {
    throw badRequest("the request body must be a JSON object");
  }
  return body as Record<string, unknown>;
}

export function parseCommon(
  b: Record<string, unknown>,
  maxTokensLimit: number,
  defaultMaxTokens: number,
  kind: "text" | "chat" = "text",
): CommonParams {
  if (typeof b.model !== "string" || !b.model) {
    throw badRequest("'model' is required and must be a string", "model");
  }
  if (b.stream !== undefined && b.stream !== null && typeof b.stream !== "boolean") {
    throw badRequest("'stream' must be a boolean", "stream");
  }
  const n = given(b.n) ? int(b.n, "n", 1, MAX_CHOICES) : 1;
  const bestOf = given(b.best_of) ? int(b.best_of, "best_of", n, MAX_CHOICES) : n;
  if (given(b.echo) && typeof b.echo !== "boolean") throw badRequest("'echo' must be a boolean", "echo");
  const maxTokens = b.max_tokens ?? b.max_completion_tokens;
  const stop = b.stop === undefined || b.stop === null ? [] : typeof b.stop === "string" ? [b.stop] : b.stop;
  if (!Array.isArray(stop) || stop.length > 4 || stop.some((s) => typeof s !== "string")) {
    throw badRequest("'stop' must be a string or an array of up to 4 strings", "stop");
  }
  const so = b.stream_options as { include_usage?: unknown } | undefined;
  if (
    given(so) &&
    (typeof so !== "object" || (given(so?.include_usage) && typeof so?.include_usage !== "boolean"))
  ) {
    throw badRequest("'stream_options' must be an object with a boolean 'include_usage'", "stream_options");
  }
  return {
    model: b.model,
    stream: b.stream === true,
    includeUsage: so?.include_usage === true,
    n,
    bestOf,
    echo: b.echo === true,
    sampling: {
      maxTokens: maxTokens === undefined || maxTokens === null
        ? Math.min(defaultMaxTokens, maxTokensLimit)
        : int(maxTokens, "max_tokens", 1, maxTokensLimit),
      ...(given(maxTokens) ? { maxTokensAsked: true } : {}),
      temperature: b.temperature === undefined || b.temperature === null
        ? 1
        : num(b.temperature, "temperature", 0, 2),
      topP: b.top_p === undefined || b.top_p === null ? 1 : num(b.top_p, "top_p", 1e-9, 1),
      seed: b.seed === undefined || b.seed === null
        ? undefined
        : int(b.seed, "seed", -(2 ** 53) + 1, 2 ** 53 - 1),
      ...parseSamplingExtras(b, kind),
    },
    stop: stop as string[],
    kvCompression: b.kv_compression,
  };
}

/** Penalties, logit bias, log-probabilities and vLLM's extras, range-checked. */
function parseSamplingExtras(b: Record<string, unknown>, kind: "text" | "chat"): Partial<SamplingParams> {
  const out: Partial<SamplingParams> = {};
  if (given(b.presence_penalty)) out.presencePenalty = num(b.presence_penalty, "presence_penalty", -2, 2);
  if (given(b.frequency_penalty)) out.frequencyPenalty = num(b.frequency_penalty, "frequency_penalty", -2, 2);
  if (given(b.repetition_penalty)) {
    const r = b.repetition_penalty;
    if (typeof r !== "number" || !(r > 0) || r > 1e6) {
      throw badRequest("'repetition_penalty' must be a number > 0 (1 = off)", "repetition_penalty");
    }
    out.repetitionPenalty = r;
  }
  if (given(b.logit_bias)) {
    const lb = b.logit_bias;
    if (typeof lb !== "object" || Array.isArray(lb)) {
      throw badRequest("'logit_bias' must be an object of token id -> bias", "logit_bias");
    }
    out.logitBias = Object.entries(lb as Record<string, unknown>).map(([k, v]) => {
      if (!/^\d{1,10}$/.test(k)) throw badRequest(`logit_bias key '${k}' is not a token id`, "logit_bias");
      return { id: Number(k), bias: num(v, `logit_bias.${k}`, -100, 100) };
    });
  }
  if (kind === "text" && given(b.logprobs)) out.logprobs = int(b.logprobs, "logprobs", 0, 20);
  if (kind === "chat") {
    if (given(b.logprobs) && typeof b.logprobs !== "boolean") {
      throw badRequest("'logprobs' must be a boolean", "logprobs");
    }
    const top = given(b.top_logprobs) ? int(b.top_logprobs, "top_logprobs", 0, 20) : undefined;
    if (top !== undefined && b.logprobs !== true) {
      throw badRequest("'top_logprobs' needs 'logprobs: true'", "top_logprobs");
    }
    if (b.logprobs === true) out.logprobs = top ?? 0;
  }
  if (given(b.stop_token_ids)) {
    const ids = b.stop_token_ids;
    if (!Array.isArray(ids) || ids.length > 4096 || !ids.every((x) => Number.isInteger(x) && x >= 0)) {
      throw badRequest("'stop_token_ids' must be an array of token ids", "stop_token_ids");
    }
    out.stopTokenIds = ids;
  }
  if (given(b.top_k)) {
    const k = int(b.top_k, "top_k", -1, 2 ** 31 - 1);
    if (k > 0) out.topK = k;
  }
  if (given(b.min_p)) {
    const m = num(b.min_p, "min_p", 0, 1);
    if (m > 0) out.minP = m;
  }
  if (given(b.min_tokens)) out.minTokens = int(b.min_tokens, "min_tokens", 0, 1 << 22);
  if (given(b.ignore_eos)) {
    if (typeof b.ignore_eos !== "boolean") throw badRequest("'ignore_eos' must be a boolean", "ignore_eos");
    out.ignoreEos = b.ignore_eos;
  }
  return out;
}

/** One prompt of /v1/completions. */
export type PromptInput = { prompt: string; promptIds?: undefined } | {
  prompt?: undefined;
  promptIds: number[];
};

const isIds = (p: unknown): p is number[] =>
  Array.isArray(p) && p.length > 0 && p.every((x) => typeof x === "number" && Number.isInteger(x) && x >= 0);

/**
 * `prompt` of /v1/completions: a string, token ids, or a list of strings or of token-id lists
 * (one choice set per prompt, in order).
 */
export function parsePrompts(p: unknown): PromptInput[] {
  if (typeof p === "string") return [{ prompt: p }];
  if (isIds(p)) return [{ promptIds: p }];
  if (Array.isArray(p) && p.length > 0) {
    return p.map((x, i) => {
      if (typeof x === "string") return { prompt: x };
      if (isIds(x)) return { promptIds: x };
      throw badRequest(`prompt[${i}] must be a string or a non-empty array of token ids`, "prompt");
    });
  }
  throw badRequest(
    "'prompt' is required and must be a string, token ids, or a list of strings or of token-id lists",
    "prompt",
  );
}

export function parseMessages(m: unknown): ChatMessage[] {
  if (!Array.isArray(m) || m.length === 0) {
    throw badRequest("'messages' must be a non-empty array", "messages");
  }
  return m.map((x, i) => {
    const msg = x as { role?: unknown; content?: unknown; tool_calls?: unknown; tool_call_id?: unknown };
    if (
      !msg || typeof msg.role !== "string" ||
      !["system", "user", "assistant", "developer", "tool"].includes(msg.role)
    ) {
      throw badRequest(
        `messages[${i}].role must be system, user, assistant, developer or tool`,
        `messages[${i}].role`,
      );
    }
    const toolCalls = given(msg.tool_calls) ? parseToolCalls(msg.tool_calls, i, msg.role) : undefined;
    let content = msg.content;
    // An assistant turn that called tools has no text of its own (OpenAI sends content: null).
    if ((content === null || content === undefined) && toolCalls) content = "";
    if (Array.isArray(content)) {
      content = content.map((part: { type?: string; text?: unknown }) => {
        if (part?.type !== "text" || typeof part.text !== "string") {
          throw badRequest(`messages[${i}].content: only text parts are supported`, `messages[${i}].content`);
        }
        return part.text;
      }).join("");
    }
    if (typeof content !== "string") {
      throw badRequest(`messages[${i}].content must be a string`, `messages[${i}].content`);
    }
    if (given(msg.tool_call_id) && (msg.role !== "tool" || typeof msg.tool_call_id !== "string")) {
      throw badRequest(
        `messages[${i}].tool_call_id must be a string, on a tool message`,
        `messages[${i}].tool_call_id`,
      );
    }
    return {
      role: msg.role,
      content,
      ...(toolCalls ? { tool_calls: toolCalls } : {}),
      ...(typeof msg.tool_call_id === "string" ? { tool_call_id: msg.tool_call_id } : {}),
    };
  });
}

/** An assistant turn's `tool_calls`: `{id, type: "function", function: {name, arguments}}` each. */
function parseToolCalls(v: unknown, i: number, role: string): NonNullable<ChatMessage["tool_calls"]> {
  const param = `messages[${i}].tool_calls`;
  if (role !== "assistant") throw badRequest(`${param}: only an assistant message has tool calls`, param);
  if (!Array.isArray(v)) throw badRequest(`${param} must be an array`, param);
  return v.map((c, k) => {
    const f = c?.function;
    if (
      !c || (c.type !== undefined && c.type !== "function") || typeof f?.name !== "string" ||
      typeof f.arguments !== "string" || (c.id !== undefined && typeof c.id !== "string")
    ) {
      throw badRequest(
        `${param}[${k}] must be {id, type: "function", function: {name, arguments}} with strings`,
        param,
      );
    }
    return { id: c.id ?? "", type: "function" as const, function: { name: f.name, arguments: f.arguments } };
  });
}
