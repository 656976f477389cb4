/**
 * The gateway's estimate of the KVs per head a prompt leaves after eviction, sent with
 * `decode.open` so decode reserves blocks before prefill runs. The gateway does not tokenize
 * (prefill does): text counts one token per 4 characters, a chat turn 4 more for its template.
 * An estimate, not a bound: the commit reserves the exact need.
 *
 * @example
 * ```ts
 * import { estimateKvTokens } from "./kv_estimate.ts";
 * // estimateKvTokens({ prompt: "x".repeat(400), kv }) === 101 without eviction
 * ```
 * @module
 */
import type { KvSettings } from "../../shared/handoff/contract.ts";
import type { ChatMessage } from "./backend.ts";

/** What the estimate reads of a completion. */
export interface PromptShape {
  prompt?: string;
  promptIds?: number[];
  messages?: ChatMessage[];
  kv: KvSettings;
}

/** KVs per head the prompt is expected to keep: its tokens (and BOS), less eviction. */
export function estimateKvTokens(input: PromptShape): number {
  const tokens = input.promptIds?.length ??
    (input.messages
      ? input.messages.reduce((n, m) => n + Math.ceil(m.content.length / 4) + 4, 1)
      : Math.ceil((input.prompt ?? "").length / 4) + 1);
  const kv = input.kv;
  let kept = tokens;
  if (kv.evictionRate > 1) {
    kept = Math.min(tokens, Math.ceil(tokens / kv.evictionRate) + kv.sink + kv.protectedWindow);
  }
  if (kv.maxCacheTokens !== undefined) kept = Math.min(kept, kv.maxCacheTokens);
  return kept;
}
