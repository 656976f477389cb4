/**
 * The prefill service: owns a model session, runs prompts, and hands each prompt's KV cache to
 * decode through the node's own compression (services/compression), so raw KV stays on this
 * node (see shared/handoff/contract.ts).
 * @module
 */
import type { NatsConnection } from "@nats-io/nats-core";
import type { Service, ServiceMsg } from "@nats-io/services";
import type { Model } from "../../shared/model/mod.ts";
import type { Config } from "../../shared/config/mod.ts";
import { badRequest, KvrelayError } from "../../shared/errors.ts";
import { startService } from "../../shared/nats/mod.ts";
import { parseBody } from "../../shared/nats/call.ts";
import { deadlineFromHeaders, timeLeft } from "../../shared/nats/deadline.ts";
import {
  CALLS,
  type DetokenizeReply,
  type PrefillRunReply,
  type PrefillRunRequest,
  SUBJECTS,
  type TokenizeReply,
} from "../../shared/handoff/contract.ts";
import { type StartedPrefill, startPrefill } from "../../shared/pipeline/prefill_stage.ts";
import { seededRng } from "../../shared/model/sampling/rng.ts";
import { chatPromptIds, loadChatTemplate } from "../../shared/pipeline/chat.ts";
import type { ChatTemplate } from "../../shared/tokenizer/mod.ts";
import { attr, withSpan } from "../../shared/telemetry/mod.ts";
import { Registry } from "prom-client";
import { KvMetrics, metricsReport } from "../../shared/metrics/mod.ts";
import { type Compression, startCompression } from "../compression/service.ts";

/** A prefill node: the prefill service and its compression. */
export interface PrefillNode {
  prefill: Service;
  compression: Compression;
  stop(): Promise<void>;
}

export async function startPrefillNode(
  nc: NatsConnection,
  model: Model,
  config: Config,
): Promise<PrefillNode> {
  const compression = await startCompression(nc, config);
  const c = model.config;
  const chat = await loadChatTemplate(config);
  // Every hand-off this node runs, served to the gateway's GET /metrics in $SRV.STATS.
  const registry = new Registry();
  const run = new PrefillRunner(model, config, chat, compression, new KvMetrics(registry));
  const prefill = await startService(nc, {
    name: "prefill",
    description: "runs prompts and hands their KV cache, compressed, to decode",
    metadata: { model: c.name, max_seq_len: String(c.maxSeqLen), vocab_size: String(c.vocabSize) },
    statsData: () => metricsReport(registry),
    endpoints: {
      run: { subject: SUBJECTS.prefillRun, handler: (msg) => run.handle(msg) },
      tokenize: {
        subject: SUBJECTS.prefillTokenize,
        handler: (msg) => Promise.resolve().then(() => run.tokenize(msg)),
      },
      detokenize: {
        subject: SUBJECTS.prefillDetokenize,
        handler: (msg) => Promise.resolve().then(() => run.detokenize(msg)),
      },
    },
  });
  return {
    prefill,
    compression,
    async stop() {
      await prefill.stop();
      await compression.stop();
    },
  };
}

/** Runs one `kvrelay.prefill.run` request after another's turn: tokenize, prefill, hand off. */
class PrefillRunner {
  constructor(
    readonly model: Model,
    readonly config: Config,
    readonly chat: ChatTemplate | undefined,
    readonly compression: Compression,
    readonly kvMetrics: KvMetrics,
  ) {}

  async handle(msg: ServiceMsg): Promise<PrefillRunReply> {
    // The request's deadline (Kvrelay-Timeout): a request that waited past it is not started.
    const deadline = deadlineFromHeaders(msg.headers, this.config.requestTimeoutMs);
    if (timeLeft(deadline) === 0) {
      throw new KvrelayError("timeout", "the request's deadline passed in the queue");
    }
    const req = parseBody(CALLS.prefillRun.request, msg.data, CALLS.prefillRun.name);
    const ids = this.#promptIds(req);
    this.#checkTokenIds(req);
    const rng = seededRng((req.sampling.seed ?? 0x5eed) ^ 0x9e3779b9);
    // The hand-off starts on the first layer group while prefill computes the rest (a model with
    // KVRELAY_PREFILL_GROUPS > 1); the commit waits for prefill's first token.
    // started inside the span (withSpan calls its fn at once), so the span covers all of prefill
    let started!: StartedPrefill;
    const stop = new AbortController(); // a failed hand-off stops prefill's remaining groups
    const signal = stop.signal;
    const ending = withSpan(
      "prefill",
      {
        [attr.REQUEST_ID]: req.requestId,
        [attr.MODEL]: this.model.config.name,
        [attr.STAGE]: "prefill",
        [attr.INPUT_TOKENS]: ids.length,
      },
      () =>
        (started = startPrefill(this.model, ids, { kv: req.kv, sampling: req.sampling, rng, signal })).ending,
    );
    const handOff = started.kv.then((kv) =>
      this.compression.handOff({
        requestId: req.requestId,
        kv: req.kv,
        decodeIngest: req.decodeIngest,
        prefill: ending,
        promptLastToken: ids.at(-1),
        promptIds: ids,
        timeoutMs: Math.max(1, timeLeft(deadline)),
      }, kv)
    );
    handOff.catch(() => stop.abort());
    // the request fails with whichever fails first (a failed prefill fails the hand-off's wait too)
    const [pre, usage] = await Promise.all([ending, handOff]);
    this.kvMetrics.observe(usage);
    return { requestId: req.requestId, promptIds: ids, firstToken: pre.firstToken, kv: usage };
  }

  /** vLLM's /tokenize: the ids prefill would run (a chat prompt rendered as for a completion). */
  tokenize(msg: ServiceMsg): TokenizeReply {
    const req = parseBody(CALLS.prefillTokenize.request, msg.data, CALLS.prefillTokenize.name);
    const { tokenizer } = this.model;
    const tokens = req.messages
      ? chatPromptIds(tokenizer, this.chat, req.messages)
      : tokenizer.encode(req.prompt ?? "", { bos: req.addSpecialTokens ?? true });
    return { tokens, maxModelLen: this.model.config.maxSeqLen };
  }

  /** vLLM's /detokenize: the text of ids, as a prompt (no BOS handling beyond the tokenizer's). */
  detokenize(msg: ServiceMsg): DetokenizeReply {
    const req = parseBody(CALLS.prefillDetokenize.request, msg.data, CALLS.prefillDetokenize.name);
    const vocab = this.model.config.vocabSize;
    const bad = req.tokens.findIndex((t) => t >= vocab);
    if (bad >= 0) {
      throw badRequest(
        `tokens[${bad}] = ${req.tokens[bad]} is not below the vocabulary size ${vocab}`,
        "tokens",
      );
    }
    return { prompt: this.model.tokenizer.decode(req.tokens) };
  }

  /** Token ids a request names must be this model's: out of range is a 400, never skipped. */
  #checkTokenIds(req: PrefillRunRequest): void {
    const vocab = this.model.config.vocabSize;
    const named: [string, number[] | undefined][] = [
      ["prompt", req.promptIds],
      ["logit_bias", req.sampling.logitBias?.map((b) => b.id)],
      ["stop_token_ids", req.sampling.stopTokenIds],
    ];
    for (const [param, ids] of named) {
      const bad = ids?.find((id) => id >= vocab);
      if (bad !== undefined) {
        throw badRequest(`${param} names token ${bad}; this model's vocabulary has ${vocab} tokens`, param);
      }
    }
  }

  #promptIds(req: PrefillRunRequest): number[] {
    const { tokenizer } = this.model;
    const ids = req.promptIds ??
      (req.messages
        ? chatPromptIds(tokenizer, this.chat, req.messages)
        : typeof req.prompt === "string"
        ? tokenizer.encode(req.prompt)
        : undefined);
    if (!ids || ids.length === 0) throw badRequest("the prompt is empty after tokenization", "prompt");
    const maxLen = this.model.config.maxSeqLen;
    if (ids.length >= maxLen) {
      throw badRequest(`the prompt has ${ids.length} tokens; this model's context is ${maxLen}`, "prompt");
    }
    const asked = req.sampling.maxTokens;
    if (req.sampling.maxTokensAsked && ids.length + asked > maxLen) {
      // vLLM's check and wording: the prompt and the completion share the context.
      throw badRequest(
        `This model's maximum context length is ${maxLen} tokens. However, you requested ${
          ids.length + asked
        } tokens (${ids.length} in the prompt, ${asked} in the completion). Please reduce the length of the prompt or completion.`,
        "max_tokens",
      );
    }
    return ids;
  }
}
