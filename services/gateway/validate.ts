/**
 * Validation of OpenAI-style request bodies: each field checked for type and range, with the
 * offending field named in the 400. Unknown fields are ignored, as OpenAI clients send many.
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
}

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
): CommonParams {
  if (typeof b.model !== "string" || !b.model) {
    throw badRequest("'model' is required and must be a string", "model");
  }
  if (b.stream !== undefined && b.stream !== null && typeof b.stream !== "boolean") {
    throw badRequest("'stream' must be a boolean", "stream");
  }
  if (b.n !== undefined && b.n !== null && b.n !== 1) throw badRequest("only n = 1 is supported", "n");
  const maxTokens = b.max_tokens ?? b.max_completion_tokens;
  const stop = b.stop === undefined || b.stop === null ? [] : typeof b.stop === "string" ? [b.stop] : b.stop;
  if (!Array.isArray(stop) || stop.length > 4 || stop.some((s) => typeof s !== "string")) {
    throw badRequest("'stop' must be a string or an array of up to 4 strings", "stop");
  }
  const so = b.stream_options as { include_usage?: unknown } | undefined;
  return {
    model: b.model,
    stream: b.stream === true,
    includeUsage: so?.include_usage === true,
    sampling: {
      maxTokens: maxTokens === undefined || maxTokens === null
        ? defaultMaxTokens
        : int(maxTokens, "max_tokens", 1, maxTokensLimit),
      temperature: b.temperature === undefined || b.temperature === null
        ? 1
        : num(b.temperature, "temperature", 0, 2),
      topP: b.top_p === undefined || b.top_p === null ? 1 : num(b.top_p, "top_p", 1e-9, 1),
      seed: b.seed === undefined || b.seed === null
        ? undefined
        : int(b.seed, "seed", -(2 ** 53) + 1, 2 ** 53 - 1),
    },
    stop: stop as string[],
    kvCompression: b.kv_compression,
  };
}

/** `prompt` of /v1/completions: a string, or token ids, or a one-element list of either. */
export function parsePrompt(p: unknown): { prompt?: string; promptIds?: number[] } {
  if (Array.isArray(p) && p.length === 1 && (typeof p[0] === "string" || Array.isArray(p[0]))) p = p[0];
  if (typeof p === "string") return { prompt: p };
  if (
    Array.isArray(p) && p.length > 0 && p.every((x) => typeof x === "number" && Number.isInteger(x) && x >= 0)
  ) {
    return { promptIds: p as number[] };
  }
  if (Array.isArray(p)) {
    throw badRequest(
      "'prompt' must be a string or token ids; batches of prompts are not supported",
      "prompt",
    );
  }
  throw badRequest("'prompt' is required and must be a string or an array of token ids", "prompt");
}

export function parseMessages(m: unknown): ChatMessage[] {
  if (!Array.isArray(m) || m.length === 0) {
    throw badRequest("'messages' must be a non-empty array", "messages");
  }
  return m.map((x, i) => {
    const msg = x as { role?: unknown; content?: unknown };
    if (
      !msg || typeof msg.role !== "string" ||
      !["system", "user", "assistant", "developer", "tool"].includes(msg.role)
    ) {
      throw badRequest(
        `messages[${i}].role must be system, user, assistant, developer or tool`,
        `messages[${i}].role`,
      );
    }
    let content = msg.content;
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
    return { role: msg.role, content };
  });
}
