/**
 * The last completions the gateway answered, newest first, for the dashboard: what each
 * asked and took (tokens, TTFT) and its `usage.kv`. No prompt or completion text is kept.
 * @module
 */
import type { KvUsage } from "../../../shared/handoff/contract.ts";

/** One finished completion. */
export interface RecentRequest {
  id: string;
  endpoint: "/v1/completions" | "/v1/chat/completions";
  /** Unix ms at the end. */
  at: number;
  /** `ok`, `cancelled`, or the error code. */
  outcome: string;
  finishReason?: string;
  ttftMs?: number;
  totalMs: number;
  promptTokens?: number;
  completionTokens?: number;
  kv?: KvUsage;
  /** The request's trace (W3C trace id), when tracing is on. */
  traceId?: string;
}

/** A ring of the last `capacity` completions. */
export class RecentRequests {
  #items: RecentRequest[] = [];
  constructor(readonly capacity = 50) {}

  add(r: RecentRequest): void {
    this.#items.unshift(r);
    if (this.#items.length > this.capacity) this.#items.length = this.capacity;
  }

  /** Newest first. */
  list(): RecentRequest[] {
    return [...this.#items];
  }
}
