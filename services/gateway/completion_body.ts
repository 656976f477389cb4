/**
 * A completion's bodies in OpenAI's shapes: the whole answer, and the chunks of a stream (the
 * chat role chunk, text and finish chunks, the usage chunk), with each choice's
 * log-probabilities in its endpoint's shape.
 * @module
 */
import type { TokenOut, Usage } from "./backend.ts";
import type { Choice } from "./choices.ts";
import { chatLogprobs, completionLogprobs } from "./logprobs_format.ts";

export type Kind = "text" | "chat";

/** What every body of one response shares. */
export interface Shape {
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

export function finalBody(s: Shape, choices: Choice[], usage: Usage) {
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

export function chunkBody(
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

/** Chat's first chunk of a choice: its role. */
export function roleChunk(s: Shape, ch: Choice) {
  return {
    ...chunkBody(s, ch, "", undefined, null),
    choices: [{
      index: ch.index,
      delta: { role: "assistant", content: "" },
      logprobs: null,
      finish_reason: null,
    }],
  };
}

/** The last chunk of a stream with `include_usage`: no choices, the usage of all. */
export function usageChunk(s: Shape, usage: Usage) {
  return {
    id: s.id,
    object: s.kind === "chat" ? "chat.completion.chunk" : "text_completion",
    created: s.created,
    model: s.model,
    choices: [],
    usage,
  };
}
