/**
 * Generated tokens' log-probabilities in OpenAI's two shapes: the legacy completions object
 * (`tokens`, `token_logprobs`, `top_logprobs`, `text_offset`) and chat's `content` entries
 * (`token`, `logprob`, `bytes`, `top_logprobs`).
 * @module
 */
import type { TokenOut } from "./backend.ts";

export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  /** Per token: the alternatives' text → log-probability, the chosen token included (as vLLM gives). */
  top_logprobs: Record<string, number>[];
  /** Per token: where its text starts in the choice's text. */
  text_offset: number[];
}

export interface ChatLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: { token: string; logprob: number; bytes: number[] }[];
}

const utf8 = new TextEncoder();
const bytes = (s: string) => Array.from(utf8.encode(s));

/** The completions shape of `tokens`, whose text starts at `offset` in the choice's text. */
/** How a token is named: its text, or (vLLM's `return_tokens_as_token_ids`) `token_id:<id>`. */
export type TokenName = (id: number, text: string) => string;
const asText: TokenName = (_id, text) => text;

export function completionLogprobs(
  tokens: TokenOut[],
  offset: number,
  name: TokenName = asText,
): CompletionLogprobs {
  const out: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  for (const t of tokens) {
    out.tokens.push(name(t.id, t.text));
    out.token_logprobs.push(t.logprob);
    const top: Record<string, number> = {};
    for (const a of t.top) top[name(a.id, a.text)] = a.logprob;
    top[name(t.id, t.text)] ??= t.logprob;
    out.top_logprobs.push(top);
    out.text_offset.push(offset);
    offset += t.text.length;
  }
  return out;
}

/** Chat's `logprobs.content` entries of `tokens`. */
export function chatLogprobs(tokens: TokenOut[], name: TokenName = asText): ChatLogprob[] {
  return tokens.map((t) => ({
    token: name(t.id, t.text),
    logprob: t.logprob,
    bytes: bytes(t.text),
    top_logprobs: t.top.map((a) => ({ token: name(a.id, a.text), logprob: a.logprob, bytes: bytes(a.text) })),
  }));
}
