/**
 * The compression service, in the prefill process: raw KV never leaves the node that made it.
 * It owns the node's frame encoder (the CPU codec, or the WebGPU codec for the codecs that run
 * there), the modelled link and pipelining, runs one `HandOff` per request, and is a NATS
 * micro-service of its own (discovery, stats, ping, and `status` on its instance subject) so
 * operators see each node's compression work.
 * @module
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { nuid } from "@nats-io/nats-core";
import type { Service } from "@nats-io/services";
import type { Config } from "../../shared/config/mod.ts";
import { LinkModel, startService } from "../../shared/nats/mod.ts";
import { SUBJECTS } from "../../shared/handoff/contract.ts";
import type { KvUsage } from "../../shared/handoff/contract.ts";
import { CODEC_TRAITS } from "../../shared/codec/mod.ts";
import { cpuFrameEncoder, type FrameEncoder, type PrefillKv } from "../../shared/pipeline/compress_stage.ts";
import { type CodecBackend, cudaFrameEncoder, gpuFrameEncoder, selectCodecBackend } from "./codec_device.ts";
import { cpuBackend } from "../../shared/codec/webgpu/mod.ts";
import { createCudaFastCodec } from "../../shared/codec/cuda/mod.ts";
import { HandOff, type HandOffRequest } from "./handoff.ts";
import { CodecPool } from "../../shared/pipeline/workers/codec_pool.ts";

/** The node's compression: hands requests' KV to decode. */
export interface Compression {
  service: Service;
  handOff(req: HandOffRequest, prefill: PrefillKv): Promise<KvUsage>;
  stop(): Promise<void>;
}

export async function startCompression(nc: NatsConnection, config: Config): Promise<Compression> {
  const instance = nuid.next();
  // KVRELAY_CODEC_DEVICE=cuda: the fast codec on CUDA, every other codec on the CPU
  const cuda = config.codecDevice === "cuda"
    ? createCudaFastCodec({ libPath: config.cudaLib, device: config.cudaDevice })
    : undefined;
  const backend: CodecBackend = cuda
    ? cpuBackend("KVRELAY_CODEC_DEVICE=cuda: codecs other than fast")
    : await selectCodecBackend(config.codecDevice as Exclude<typeof config.codecDevice, "cuda">);
  console.error(`[compression] codec backend: ${backend.description}`);
  if (cuda) console.error(`[compression] fast codec on CUDA: ${cuda.device}`);
  // The fast codec goes to the GPU only when asked for (KVRELAY_CODEC_DEVICE=webgpu): its kernels
  // run at 100+ GB/s on an H200, but Deno's WebGPU moves host data at 3.5 GB/s up and 0.6 GB/s
  // down, so end to end the WebAssembly codec on the CPU is faster (tests/bench/README.md).
  const gpu = backend.kind === "webgpu"
    ? {
      kvsort: gpuFrameEncoder(backend),
      fast: config.codecDevice === "webgpu"
        ? gpuFrameEncoder(backend, console.error, { codec: "fast" })
        : undefined,
    }
    : undefined;
  const link = config.link.gbps
    ? new LinkModel({ gbps: config.link.gbps, rttMs: config.link.rttMs })
    : undefined;
  if (link) console.error(`[compression] modelled link: ${link.gbps} Gbit/s, round trip ${link.rttMs} ms`);
  const stats = { requests: 0, failed: 0, raw_bytes: 0, wire_bytes: 0, handoff_ms: 0 };
  // with KVRELAY_CODEC_THREADS > 1 the CPU codec runs on a pool of workers, two layers a call
  const pool = config.codecThreads > 1 ? new CodecPool(config.codecThreads) : undefined;
  const cpu = pool ? pool.frameEncoder(2) : cpuFrameEncoder;
  if (pool) console.error(`[compression] CPU codec on ${pool.size} worker threads`);
  const fastCuda = cuda ? cudaFrameEncoder(cuda) : undefined;
  const encoderFor = (codec: HandOffRequest["kv"]["codec"]): FrameEncoder =>
    codec === "fast" && fastCuda
      ? fastCuda
      : !gpu || !CODEC_TRAITS[codec].gpu
      ? cpu
      : codec === "fast"
      ? gpu.fast ?? cpu
      : gpu.kvsort;

  const service = await startService(nc, {
    name: "compression",
    description: "evicts and encodes KV caches where prefill made them, and sends them to decode",
    metadata: { instance, backend: backend.kind },
    statsData: () => ({ ...stats, link_gbps: link?.gbps ?? null, pipeline: config.pipeline }),
    endpoints: {
      status: {
        subject: SUBJECTS.compressionStatus(instance),
        queue: "",
        handler: () =>
          Promise.resolve({
            instance,
            backend: backend.description,
            link: link ? { gbps: link.gbps, rtt_ms: link.rttMs } : null,
            pipeline: config.pipeline,
            ...stats,
          }),
      },
    },
  });

  return {
    service,
    async handOff(req, prefill) {
      stats.requests++;
      try {
        const deps = { nc, encoder: encoderFor(req.kv.codec), link, pipeline: config.pipeline };
        const usage = await new HandOff(deps, req, prefill).run();
        stats.raw_bytes += usage.raw_bytes;
        stats.wire_bytes += usage.wire_bytes;
        stats.handoff_ms += usage.ms.handoff;
        return usage;
      } catch (err) {
        stats.failed++;
        throw err;
      }
    },
    async stop() {
      await service.stop();
      backend.destroy();
      pool?.close();
    },
  };
}
