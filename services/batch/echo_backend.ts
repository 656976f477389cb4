/**
 * A deterministic `Backend` that needs no model: it answers `echo: <prompt>` (or the last
 * chat message) in a few pieces, after an optional delay. For tests and demos of the batch
 * path; select it in the worker with `KVRELAY_BATCH_BACKEND=echo`.
 * @module
 */
import type { KvUsage } from "../../shared/handoff/contract.ts";
import type { CompressionStats } from "../../shared/pipeline/compress_stage.ts";
import { buildKvUsage } from "../../shared/pipeline/usage.ts";
import type { Backend, CompletionEvent, CompletionInput, ModelInfo } from "../gateway/backend.ts";

export const ECHO_MODEL = "kvrelay-echo";

export class EchoBackend implements Backend {
  #delayMs: number;
  constructor(opts: { delayMs?: number } = {}) {
    this.#delayMs = opts.delayMs ?? 0;
  }
  model(): Promise<ModelInfo> {
    return Promise.resolve({ id: ECHO_MODEL, maxSeqLen: 4096 });
  }
  ready(): Promise<Record<string, boolean>> {
    return Promise.resolve({ echo: true });
  }
  /** One id per word, as this backend counts tokens. */
  tokenize(req: { prompt?: string }): Promise<{ tokens: number[]; maxModelLen: number }> {
    const words = (req.prompt ?? "").split(" ").filter(Boolean);
    return Promise.resolve({ tokens: words.map((_, i) => i), maxModelLen: 4096 });
  }
  detokenize(tokens: number[]): Promise<string> {
    return Promise.resolve(tokens.join(" "));
  }
  async *complete(input: CompletionInput, signal: AbortSignal): AsyncIterable<CompletionEvent> {
    const source = input.prompt ?? input.messages?.at(-1)?.content ?? (input.promptIds ?? []).join(" ");
    if (this.#delayMs) {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(resolve, this.#delayMs);
        signal.addEventListener("abort", () => {
          clearTimeout(t);
          reject(signal.reason);
        }, { once: true });
      });
    }
    const words = `echo: ${source}`.split(/(?<= )/);
    const pieces = words.slice(0, input.sampling.maxTokens);
    for (const w of pieces) yield { type: "text", text: w };
    const prompt = source.split(" ").length;
    yield {
      type: "done",
      finishReason: pieces.length < words.length ? "length" : "stop",
      usage: {
        prompt_tokens: prompt,
        completion_tokens: pieces.length,
        total_tokens: prompt + pieces.length,
        kv: echoKvUsage(input),
      },
    };
  }
}

/** What the pipeline would have measured had it moved nothing. */
const NOTHING_MOVED: CompressionStats = {
  evictMs: 0,
  encodeMs: 0,
  rawBytes: 0,
  wireBytes: 0,
  keptFraction: 1,
  keptFractionPerLayer: [],
};
const NO_TIME = { prefill: 0, transfer: 0, decode_kv: 0, generate: 0, handoff: 0 };

/**
 * `usage.kv` as the pipeline builds it with no KV moved, except that it reports the settings
 * the line asked for where the pipeline reports what it applied (the bound of a lossless codec,
 * k of a codec that does not sort, eviction by cache cap alone), and a ratio of 1.
 */
function echoKvUsage(input: CompletionInput): KvUsage {
  const kv = input.kv;
  return {
    ...buildKvUsage(kv, NOTHING_MOVED, NO_TIME, "none"),
    error_bound: kv.errorBound,
    error_mode: kv.errorMode,
    index_share: kv.indexShare,
    eviction: kv.evictionRate > 1 ? kv.eviction : "off",
    ratio: 1,
  };
}
