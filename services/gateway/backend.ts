/**
 * What the gateway's routes need from the cluster, as one interface (`Backend`) and the events a
 * completion yields. The NATS implementation is nats_backend.ts; tests and the batch echo
 * backend implement it too.
 * @module
 */
import type {
  ChatMessage,
  CompletionRequest,
  KvUsage,
  TokenizeReply,
  TokenizeRequest,
} from "../../shared/handoff/contract.ts";

export type { ChatMessage };

/** A completion as the gateway takes it: what prefill runs, and the stop strings it cuts at. */
export interface CompletionInput extends CompletionRequest {
  stop: string[];
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  kv: KvUsage;
}

/** One generated token with its log-probabilities (when the request asked for them). */
export interface TokenOut {
  id: number;
  /** The token's text as it appears in the completion. */
  text: string;
  logprob: number;
  top: { id: number; text: string; logprob: number }[];
}

export type CompletionEvent =
  /** `tokens`: the tokens whose text starts in `text` (only when log-probabilities were asked for). */
  | { type: "text"; text: string; tokens?: TokenOut[] }
  | { type: "done"; finishReason: "stop" | "length"; usage: Usage };

export interface ModelInfo {
  id: string;
  maxSeqLen: number;
}

export interface Backend {
  complete(input: CompletionInput, signal: AbortSignal): AsyncIterable<CompletionEvent>;
  model(): Promise<ModelInfo>;
  ready(): Promise<Record<string, boolean>>;
  /** The served model's tokenizer (vLLM's /tokenize). */
  tokenize(req: TokenizeRequest): Promise<TokenizeReply>;
  /** Token ids back to text (vLLM's /detokenize). */
  detokenize(tokens: number[]): Promise<string>;
}
