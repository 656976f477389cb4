/**
 * The decode side of the hand-off bench's W2 (no model): a process of its own that takes a
 * request's encoded layer bundles on `bench.sink.ingest` exactly as the decode service does
 * (the same receiver and the same `decodeLayerBundle`), and answers the commit with the time
 * it spent decoding. `bench.sink.open` announces a request and its KV shape.
 * Run: `deno run -A tests/bench/handoff_sink.ts NATS_URL [cpu|webgpu|cuda] [THREADS]` (where the frames
 * decode, and on how many worker threads for the CPU).
 * @module
 */
import { BundleReceiver, connectNats, fromJsonBytes, startService } from "../../shared/nats/mod.ts";
import {
  bundleExpectation,
  decodeLayerBundle,
  decodeLayerBundleWith,
  type FrameDecoder,
} from "../../shared/pipeline/decode_stage.ts";
import { selectCodecBackend } from "../../shared/codec/webgpu/mod.ts";
import { createCudaFastCodec } from "../../shared/codec/cuda/mod.ts";
import { CodecPool } from "../../shared/pipeline/workers/codec_pool.ts";
import { OutputPool } from "../../shared/codec/cuda/output_pool.ts";
import { pooledFrameDecoder } from "../../services/decode/cuda_frames.ts";
import type { DecodeCommitReply } from "../../shared/handoff/contract.ts";
import { KvrelayError } from "../../shared/errors.ts";

export const SINK = { open: "bench.sink.open", ingest: "bench.sink.ingest" };

export interface SinkOpen {
  requestId: string;
  nLayers: number;
  nKvHeads: number;
  headDim: number;
  nPos: number;
}

if (import.meta.main) {
  const nc = await connectNats(Deno.args[0], "kvrelay-bench-sink");
  const receiver = new BundleReceiver({ maxBundleBytes: 2 ** 31 });
  const backend = await selectCodecBackend(Deno.args[1] === "webgpu" ? "webgpu" : "cpu");
  const cuda = Deno.args[1] === "cuda"
    ? createCudaFastCodec({
      libPath: Deno.env.get("KVRELAY_CUDA_LIB") || undefined,
      device: Number(Deno.args[3] ?? "0"),
    })
    : undefined;
  console.error(
    `[sink] codec backend: ${cuda ? `cuda on ${cuda.device} (fast codec)` : backend.description}`,
  );
  const fast = cuda ?? backend.gpu?.fast;
  const threads = Number(Deno.args[2] ?? "1");
  const pool = !fast && threads > 1 ? new CodecPool(threads) : undefined;
  // CUDA decodes into pooled outputs reused across layers, as the decode service does (cuda_frames.ts);
  // with no block store to copy into, each layer's buffer goes back to the pool once decoded
  const outputs = new OutputPool();
  const held: Float32Array[] = [];
  const onGpu: FrameDecoder | undefined = cuda
    ? pooledFrameDecoder(cuda, outputs, held)
    : fast
    ? (s, l) => fast.decodeMany(s, l)
    : pool?.frameDecoder();
  const open = (o: SinkOpen) => {
    const expect = bundleExpectation({ ...o, maxSeqLen: o.nPos });
    let decodeKvMs = 0, layers = 0;
    receiver.expect(o.requestId, {
      onBundle: async (b) => {
        const t0 = performance.now();
        const layer = onGpu
          ? await decodeLayerBundleWith(b.bytes, expect, onGpu)
          : decodeLayerBundle(b.bytes, expect);
        for (const buf of held.splice(0)) outputs.give(buf);
        if (layer.layer !== b.index) throw new KvrelayError("corrupt_bundle", "layer out of place");
        decodeKvMs += performance.now() - t0;
        layers++;
      },
      onCommit: (count) => {
        if (count !== o.nLayers || layers !== o.nLayers) {
          throw new KvrelayError("corrupt_bundle", "layers missing");
        }
        return Promise.resolve({ decodeKvMs, blocks: 0 } satisfies DecodeCommitReply);
      },
    }, 600_000);
    return { ok: true };
  };
  await startService(nc, {
    name: "bench-sink",
    description: "decodes hand-off bundles for the bench",
    endpoints: {
      open: { subject: SINK.open, handler: (m) => Promise.resolve(open(fromJsonBytes<SinkOpen>(m.data))) },
      ingest: { subject: SINK.ingest, handler: receiver.handle, queue: "" },
    },
  });
  console.log(JSON.stringify({ ready: true }));
}
