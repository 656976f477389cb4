/**
 * The compression service: takes a request's raw bundles from prefill, evicts and encodes
 * them, and sends the encoded layers to the decode instance the request names.
 * @module
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { nuid } from "@nats-io/nats-core";
import type { Service } from "@nats-io/services";
import type { Config } from "../../shared/config/mod.ts";
import {
  BundleReceiver,
  commitTransfer,
  fromJsonBytes,
  sendBundles,
  startService,
} from "../../shared/nats/mod.ts";
import {
  type CompressionCommitReply,
  type CompressionOpenReply,
  type CompressionOpenRequest,
  type DecodeCommit,
  type DecodeCommitReply,
  type PrefillCommit,
  SUBJECTS,
} from "../../shared/handoff/contract.ts";
import { CompressionJob } from "../../shared/pipeline/compress_stage.ts";
import { buildKvUsage } from "../../shared/pipeline/usage.ts";

export async function startCompressionService(nc: NatsConnection, config: Config): Promise<Service> {
  const instance = nuid.next();
  const ingest = SUBJECTS.ingest("compression", instance);
  const receiver = new BundleReceiver({ maxBundleBytes: config.maxBundleBytes });
  const timeoutMs = config.requestTimeoutMs;

  const open = (data: Uint8Array): Promise<CompressionOpenReply> => {
    const req = fromJsonBytes<CompressionOpenRequest>(data);
    const job = new CompressionJob(req.requestId, req.kv);
    receiver.expect(req.transferId, {
      onBundle: (b) => Promise.resolve(job.accept(b.index, b.bytes)),
      onCommit: async (_count, body): Promise<CompressionCommitReply> => {
        const pc = body as PrefillCommit;
        const out = job.finish();
        const t0 = performance.now();
        await sendBundles(nc, req.decodeIngest, req.requestId, out.encoded, { timeoutMs });
        const commit: DecodeCommit = { requestId: req.requestId, firstToken: pc.firstToken, nPos: pc.nPos };
        const dr = await commitTransfer<DecodeCommitReply>(
          nc,
          req.decodeIngest,
          req.requestId,
          out.encoded.length,
          commit,
          { timeoutMs },
        );
        const transfer = performance.now() - t0 - dr.decodeKvMs;
        const usage = buildKvUsage(req.kv, out.stats, {
          prefill: pc.prefillMs,
          transfer: Math.max(0, transfer),
          decode_kv: dr.decodeKvMs,
          generate: 0,
        });
        return { usage };
      },
    }, timeoutMs);
    return Promise.resolve({ ingest, instance });
  };

  return await startService(nc, {
    name: "compression",
    description: "evicts and encodes KV caches between prefill and decode",
    metadata: { instance },
    statsData: () => ({ open_transfers: receiver.openTransfers }),
    endpoints: {
      open: { subject: SUBJECTS.compressionOpen, handler: (msg) => open(msg.data) },
      ingest: { subject: ingest, handler: receiver.handle, queue: "" },
    },
  });
}
