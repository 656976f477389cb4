/**
 * The prefill service: owns a model session, runs prompts, and hands the KV cache to a
 * compression instance as raw bundles over NATS (see shared/handoff/contract.ts).
 * @module
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { nuid } from "@nats-io/nats-core";
import type { Service, ServiceMsg } from "@nats-io/services";
import type { Model } from "../../shared/model/mod.ts";
import type { Config } from "../../shared/config/mod.ts";
import { badRequest } from "../../shared/errors.ts";
import {
  commitTransfer,
  fromJsonBytes,
  requestJson,
  sendBundles,
  startService,
} from "../../shared/nats/mod.ts";
import {
  type CompressionCommitReply,
  type CompressionOpenReply,
  type PrefillCommit,
  type PrefillRunReply,
  type PrefillRunRequest,
  SUBJECTS,
} from "../../shared/handoff/contract.ts";
import { runPrefill } from "../../shared/pipeline/prefill_stage.ts";
import { seededRng } from "../../shared/pipeline/rng.ts";
import { chatPromptIds, loadChatTemplate } from "../../shared/pipeline/chat.ts";
import type { ChatTemplate } from "../../shared/tokenizer/mod.ts";
import { attr, withSpan } from "../../shared/telemetry/mod.ts";

export async function startPrefillService(
  nc: NatsConnection,
  model: Model,
  config: Config,
): Promise<Service> {
  const c = model.config;
  const chat = await loadChatTemplate(config);
  return await startService(nc, {
    name: "prefill",
    description: "runs prompts and hands their KV cache to compression",
    metadata: { model: c.name, max_seq_len: String(c.maxSeqLen), vocab_size: String(c.vocabSize) },
    endpoints: {
      run: { subject: SUBJECTS.prefillRun, handler: (msg) => handleRun(nc, model, config, chat, msg) },
    },
  });
}

async function handleRun(
  nc: NatsConnection,
  model: Model,
  config: Config,
  chat: ChatTemplate | undefined,
  msg: ServiceMsg,
): Promise<PrefillRunReply> {
  const req = fromJsonBytes<PrefillRunRequest>(msg.data);
  const ids = req.promptIds ??
    (req.messages
      ? chatPromptIds(model.tokenizer, chat, req.messages)
      : typeof req.prompt === "string"
      ? model.tokenizer.encode(req.prompt)
      : undefined);
  if (!ids || ids.length === 0) throw badRequest("the prompt is empty after tokenization", "prompt");
  const maxLen = model.config.maxSeqLen;
  if (ids.length >= maxLen) {
    throw badRequest(`the prompt has ${ids.length} tokens; this model's context is ${maxLen}`, "prompt");
  }
  const rng = seededRng((req.sampling.seed ?? 0x5eed) ^ 0x9e3779b9);
  const pre = await withSpan("prefill", {
    [attr.REQUEST_ID]: req.requestId,
    [attr.MODEL]: model.config.name,
    [attr.STAGE]: "prefill",
    [attr.INPUT_TOKENS]: ids.length,
  }, () => runPrefill(model, req.requestId, ids, { kv: req.kv, sampling: req.sampling, rng }));
  const transferId = nuid.next();
  const timeoutMs = config.requestTimeoutMs;
  const open = await requestJson<CompressionOpenReply>(nc, SUBJECTS.compressionOpen, {
    requestId: req.requestId,
    transferId,
    kv: req.kv,
    decodeIngest: req.decodeIngest,
  }, { timeoutMs });
  const sent = await sendBundles(nc, open.ingest, transferId, pre.bundles, { timeoutMs });
  const commit: PrefillCommit = {
    requestId: req.requestId,
    firstToken: pre.firstToken,
    nPos: pre.nPos,
    prefillMs: pre.prefillMs,
    rawBundleBytes: sent.bytes,
  };
  const reply = await commitTransfer<CompressionCommitReply>(
    nc,
    open.ingest,
    transferId,
    pre.bundles.length,
    commit,
    { timeoutMs },
  );
  // `transfer` in usage is the network leg compression → decode, measured by compression;
  // the raw hand-off prefill → compression stays on the node.
  const usage = {
    ...reply.usage,
    ms: { ...reply.usage.ms, prefill: Math.round(pre.prefillMs * 1000) / 1000 },
  };
  return { requestId: req.requestId, promptIds: ids, firstToken: pre.firstToken, kv: usage };
}
