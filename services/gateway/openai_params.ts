/**
 * Every request parameter OpenAI defines for /v1/completions and /v1/chat/completions (and the
 * vLLM extras kvrelay takes), with what kvrelay does with it: `honoured`; `accepted` (it asks
 * for nothing a server does, like `user`); or `refused` unless its value asks for nothing
 * kvrelay lacks (`tool_choice: "none"`, `response_format: {type: "text"}`). A refusal is a 400
 * naming the parameter. Keys outside this table are ignored, as OpenAI clients send many.
 * @module
 */
import { badRequest } from "../../shared/errors.ts";

export type Endpoint = "text" | "chat";

export interface ParamRule {
  /** The endpoints that define it. */
  on: readonly Endpoint[];
  handling: "honoured" | "accepted" | "refused";
  /**
   * For `refused`: why a value is refused, or undefined when the value asks for nothing kvrelay
   * lacks (absent and null never reach it).
   */
  refuse?: (value: unknown, body: Record<string, unknown>) => string | undefined;
  /** One line for the README and the docs table. */
  note: string;
}

const BOTH = ["text", "chat"] as const;
const TEXT = ["text"] as const;
const CHAT = ["chat"] as const;

const always = (what: string) => () => `${what} is not supported by this server`;
const emptyList = (v: unknown) => Array.isArray(v) && v.length === 0;

export const OPENAI_PARAMS: Record<string, ParamRule> = {
  model: { on: BOTH, handling: "honoured", note: "must name the served model (404 otherwise)" },
  prompt: { on: TEXT, handling: "honoured", note: "a string, token ids, or a list of either" },
  messages: { on: CHAT, handling: "honoured", note: "rendered with the model's chat template" },
  max_tokens: { on: BOTH, handling: "honoured", note: "prompt + max_tokens beyond the context is a 400" },
  max_completion_tokens: { on: BOTH, handling: "honoured", note: "as max_tokens" },
  temperature: { on: BOTH, handling: "honoured", note: "[0, 2]; 0 is greedy" },
  top_p: { on: BOTH, handling: "honoured", note: "(0, 1]" },
  seed: { on: BOTH, handling: "honoured", note: "same seed, same tokens; choice i of n uses seed + i" },
  stop: { on: BOTH, handling: "honoured", note: "up to 4 strings, cut from the text" },
  stream: { on: BOTH, handling: "honoured", note: "SSE chunks ending in [DONE]" },
  stream_options: {
    on: BOTH,
    handling: "honoured",
    note: "include_usage adds a last chunk with usage and no choices",
    refuse: (_v, b) => b.stream === true ? undefined : "'stream_options' is only allowed with 'stream: true'",
  },
  n: { on: BOTH, handling: "honoured", note: "choices per prompt, run as separate sequences" },
  presence_penalty: { on: BOTH, handling: "honoured", note: "[-2, 2], over generated tokens" },
  frequency_penalty: { on: BOTH, handling: "honoured", note: "[-2, 2], per generated occurrence" },
  logit_bias: { on: BOTH, handling: "honoured", note: "token id -> [-100, 100]; -100 bans the token" },
  logprobs: {
    on: BOTH,
    handling: "honoured",
    note: "completions: an int 0..20 of alternatives; chat: a boolean (with top_logprobs)",
  },
  top_logprobs: { on: CHAT, handling: "honoured", note: "0..20; needs logprobs: true" },
  echo: {
    on: TEXT,
    handling: "honoured",
    note: "the prompt's text starts the choice's text; with logprobs it is refused",
    refuse: (v, b) =>
      v === true && b.logprobs !== undefined && b.logprobs !== null
        ? "'echo' with 'logprobs' would need the prompt's log-probabilities, which this server does not compute"
        : undefined,
  },
  best_of: {
    on: TEXT,
    handling: "honoured",
    note:
      "candidates per prompt (≥ n); the n with the highest log-probability per token are returned; not with stream",
    refuse: (v, b) =>
      b.stream === true && v !== (b.n ?? 1) ? "'best_of' other than n cannot be streamed" : undefined,
  },
  suffix: {
    on: TEXT,
    handling: "refused",
    note: 'insertion is not supported; null or "" is fine',
    refuse: (v) => v === "" ? undefined : "'suffix' (insertion) is not supported by this server",
  },
  user: { on: BOTH, handling: "accepted", note: "an end-user id; nothing to do with it here" },
  safety_identifier: { on: CHAT, handling: "accepted", note: "as user" },
  prompt_cache_key: { on: CHAT, handling: "accepted", note: "a routing hint; nothing to do with it here" },
  metadata: { on: CHAT, handling: "accepted", note: "tags for stored completions; nothing is stored" },
  store: {
    on: CHAT,
    handling: "refused",
    note: "false is fine; completions are not stored",
    refuse: (v) => v === false ? undefined : "'store: true' is not supported: completions are not stored",
  },
  service_tier: {
    on: CHAT,
    handling: "refused",
    note: '"auto" and "default" are fine; there is one tier',
    refuse: (v) => v === "auto" || v === "default" ? undefined : `service_tier '${v}' is not offered`,
  },
  tools: {
    on: CHAT,
    handling: "refused",
    note: "an empty list is fine; tool calling is not supported",
    refuse: (v) => emptyList(v) ? undefined : "'tools' (tool calling) is not supported by this server",
  },
  tool_choice: {
    on: CHAT,
    handling: "refused",
    note: '"none" is fine',
    refuse: (v) => v === "none" ? undefined : "'tool_choice' other than \"none\" is not supported",
  },
  parallel_tool_calls: {
    on: CHAT,
    handling: "refused",
    note: "tool calling is not supported",
    refuse: always("'parallel_tool_calls' (tool calling)"),
  },
  functions: {
    on: CHAT,
    handling: "refused",
    note: "an empty list is fine; function calling is not supported",
    refuse: (v) =>
      emptyList(v) ? undefined : "'functions' (function calling) is not supported by this server",
  },
  function_call: {
    on: CHAT,
    handling: "refused",
    note: '"none" is fine',
    refuse: (v) => v === "none" ? undefined : "'function_call' other than \"none\" is not supported",
  },
  response_format: {
    on: CHAT,
    handling: "refused",
    note: '{type: "text"} is fine; JSON modes are not supported',
    refuse: (v) =>
      (v as { type?: unknown })?.type === "text"
        ? undefined
        : `response_format '${(v as { type?: unknown })?.type}' is not supported; only 'text'`,
  },
  modalities: {
    on: CHAT,
    handling: "refused",
    note: '["text"] is fine',
    refuse: (v) =>
      Array.isArray(v) && v.every((m) => m === "text") ? undefined : "only the 'text' modality is supported",
  },
  audio: { on: CHAT, handling: "refused", note: "no audio output", refuse: always("'audio' output") },
  prediction: {
    on: CHAT,
    handling: "refused",
    note: "predicted outputs are not supported",
    refuse: always("'prediction' (predicted outputs)"),
  },
  web_search_options: {
    on: CHAT,
    handling: "refused",
    note: "no web search",
    refuse: always("'web_search_options' (web search)"),
  },
  reasoning_effort: {
    on: CHAT,
    handling: "refused",
    note: "the model does not reason in hidden tokens",
    refuse: always("'reasoning_effort'"),
  },
  verbosity: { on: CHAT, handling: "refused", note: "no verbosity control", refuse: always("'verbosity'") },
  // vLLM's extras.
  repetition_penalty: {
    on: BOTH,
    handling: "honoured",
    note: "vLLM's; > 0, 1 = off, over prompt and output",
  },
  stop_token_ids: { on: BOTH, handling: "honoured", note: "vLLM's; token ids that end the choice" },
  min_tokens: {
    on: BOTH,
    handling: "honoured",
    note: "vLLM's; EOS and stop_token_ids are banned until then",
  },
  ignore_eos: { on: BOTH, handling: "honoured", note: "vLLM's; EOS does not end the choice" },
  return_tokens_as_token_ids: {
    on: BOTH,
    handling: "honoured",
    note: "vLLM's; log-probability tokens read 'token_id:<id>'",
  },
  top_k: { on: BOTH, handling: "honoured", note: "vLLM's; the k most likely tokens (-1 or 0 = all)" },
  min_p: {
    on: BOTH,
    handling: "honoured",
    note: "vLLM's; [0, 1], tokens below min_p × the top one's probability",
  },
  use_beam_search: {
    on: BOTH,
    handling: "refused",
    note: "vLLM's; only false",
    refuse: (v) => v === false ? undefined : "beam search is not supported",
  },
  kv_compression: { on: BOTH, handling: "honoured", note: "kvrelay's: per-request KV hand-off settings" },
};

/**
 * Throws a 400 naming the first parameter of `body` that kvrelay refuses: one this endpoint does
 * not define (an OpenAI parameter of the other endpoint) or a value it cannot honour.
 */
export function refuseUnsupported(body: Record<string, unknown>, endpoint: Endpoint): void {
  for (const [key, value] of Object.entries(body)) {
    const rule = Object.hasOwn(OPENAI_PARAMS, key) ? OPENAI_PARAMS[key] : undefined;
    if (!rule || value === undefined || value === null) continue;
    if (!rule.on.includes(endpoint)) {
      const other = endpoint === "chat" ? "/v1/completions" : "/v1/chat/completions";
      throw badRequest(`'${key}' is a parameter of ${other}, not of this endpoint`, key);
    }
    const why = rule.refuse?.(value, body);
    if (why) throw badRequest(why, key);
  }
}

/** The README's table of parameters: what each endpoint does with each. */
export function paramsMarkdown(): string {
  const cell = (r: ParamRule, e: Endpoint) =>
    !r.on.includes(e) ? "400 (other endpoint)" : r.handling === "refused" ? "400 unless noted" : r.handling;
  const rows = Object.entries(OPENAI_PARAMS).map(([name, r]) =>
    `| \`${name}\` | ${cell(r, "text")} | ${cell(r, "chat")} | ${r.note} |`
  );
  return [
    "| Parameter | /v1/completions | /v1/chat/completions | Notes |",
    "| --- | --- | --- | --- |",
    ...rows,
  ].join("\n");
}
