/**
 * The compression service's KVSort backend (KVRELAY_CODEC_DEVICE, `config.codecDevice`):
 * `cpu`, `webgpu` (any adapter, a software one included; no adapter is a start-up error),
 * or `auto` (WebGPU on a real GPU only, else the CPU); with `cuda` the fast codec runs on CUDA
 * (`cudaFrameEncoder`, shared/codec/cuda) and the other codecs on the CPU. On the GPU, a frame whose GPU encode
 * fails for a reason other than bad options (device lost, out of memory) is encoded by the
 * CPU codec instead — the stream format is the same — and the first such failure is logged.
 * A request's frames go to the GPU together (`gpuBatchEncoder`, `encodeMany`): one GPU
 * submission per stage for all of them instead of three round trips per frame. Sharing
 * batches between concurrent requests (`coalesce`) is available but off: on an H200, 8
 * concurrent requests took 890 ms each coalesced against 698 ms with a batch per request,
 * since one batch in flight stops requests' CPU stages from overlapping.
 * @module
 */
import { encode as cpuEncode, type EncodeOptions, type Tensor } from "../../shared/codec/mod.ts";
import { type FrameEncoder, frameTensor } from "../../shared/pipeline/compress_stage.ts";
import type { FastBatchCodec } from "../../shared/codec/fast/mod.ts";
import { coalesce, type CodecBackend, type SettledBatchEncoder } from "../../shared/codec/webgpu/mod.ts";
import type { CudaFastCodec } from "../../shared/codec/cuda/mod.ts";

export { selectCodecBackend } from "../../shared/codec/webgpu/mod.ts";
export type { CodecBackend } from "../../shared/codec/webgpu/mod.ts";

/**
 * What to do when GPU work fails: rethrow bad options (`RangeError`, `TypeError`: the CPU
 * codec refuses those too), else log the first failure and let the caller use the CPU.
 */
function gpuFailure(log: (line: string) => void, what: string): (err: unknown) => void {
  let warned = false;
  return function rethrowOrWarn(err) {
    if (err instanceof RangeError || err instanceof TypeError) throw err; // bad request, same as the CPU
    if (!warned) {
      warned = true;
      log(
        `[compression] GPU encode failed (${(err as Error)?.message ?? err}); CPU codec for such ${what}`,
      );
    }
  };
}

/** Encodes many frames in one call: `out[i]` is what the CPU codec gives `frames[i]`. */
export interface BatchFrameEncoder {
  encodeMany(frames: Tensor[], opts: EncodeOptions[]): Promise<Uint8Array[]>;
}

/**
 * The backend as the hand-off's {@linkcode FrameEncoder}: KVSort and SZ frames go through the
 * backend's batch encoder with every layer of a request in one batch (a round trip to the GPU
 * costs more than a layer); fast frames through the fast codec on the same device, in groups of
 * `fastLayersPerCall` layers so that the first groups are on the wire while the next are
 * encoded. A frame the GPU fails on for a reason other than bad options goes to the CPU codec.
 */
export function gpuFrameEncoder(
  backend: CodecBackend,
  log: (line: string) => void = console.error,
  opts: { codec?: "fast" | "kvsort"; fastLayersPerCall?: number } = {},
): FrameEncoder {
  const fast = backend.gpu?.fast;
  if (opts.codec === "fast" && fast) {
    return fastFrameEncoder("webgpu", fast, opts.fastLayersPerCall ?? 8, log);
  }
  const batch = gpuBatchEncoder(backend, log);
  return {
    device: "webgpu",
    layersPerCall: Number.MAX_SAFE_INTEGER,
    encodeFrames: (frames, opts) => batch.encodeMany(frames.map(frameTensor), opts),
  };
}

/**
 * The fast codec on CUDA (KVRELAY_CODEC_DEVICE=cuda) as the hand-off's {@linkcode FrameEncoder}:
 * `layersPerCall` layers a call (one library call, its sub-batches pipelined inside), so the
 * first layers are on the wire while the next are encoded. Frames of other codecs, and a frame
 * the GPU fails on for a reason other than bad options, go to the CPU codec (same streams).
 */
export function cudaFrameEncoder(
  cuda: CudaFastCodec,
  log: (line: string) => void = console.error,
  opts: { layersPerCall?: number } = {},
): FrameEncoder {
  return fastFrameEncoder("cuda", cuda, opts.layersPerCall ?? 4, log);
}

/**
 * The fast codec on a GPU (WebGPU or CUDA) as a {@linkcode FrameEncoder}: `layersPerCall`
 * layers a call; a frame the GPU fails on for a reason other than bad options is encoded by the
 * CPU codec (same stream), the first such failure logged.
 */
function fastFrameEncoder(
  device: "webgpu" | "cuda",
  gpu: FastBatchCodec,
  layersPerCall: number,
  log: (line: string) => void,
): FrameEncoder {
  const failed = gpuFailure(log, "fast frames");
  return {
    device,
    layersPerCall,
    async encodeFrames(frames, o) {
      const tensors = frames.map(frameTensor);
      const res = await gpu.encodeManySettled(tensors, o);
      return res.map((r, i) => {
        if (r.status === "fulfilled") return r.value;
        failed(r.reason);
        return cpuEncode(tensors[i], o[i]);
      });
    },
  };
}

/** Options of {@linkcode gpuBatchEncoder}. */
export interface BatchEncoderOptions {
  /** Share GPU batches between concurrent requests (`coalesce`). Default false (slower on an H200). */
  coalesce?: boolean;
}

/**
 * The backend's batch encoder for `CompressionJob.finishAsync`: each request's frames in one
 * `encodeMany`; with `coalesce`, concurrent requests' frames share batches (one in flight;
 * frames arriving meanwhile go together in the next), each request getting its own streams. A frame the GPU fails on for a reason
 * other than bad options is encoded by the CPU codec (the first such failure is logged); a
 * frame with bad options fails its own request only.
 */
export function gpuBatchEncoder(
  backend: CodecBackend,
  log: (line: string) => void = console.error,
  options: BatchEncoderOptions = {},
): BatchFrameEncoder {
  const failed = gpuFailure(log, "frames");
  const settled = settledEncoder(backend);
  const onGpu = options.coalesce ? coalesce(settled) : settled;
  return {
    async encodeMany(frames: Tensor[], opts: EncodeOptions[]): Promise<Uint8Array[]> {
      const res = await onGpu(frames, opts);
      return res.map((r, i) => {
        if (r.status === "fulfilled") return r.value;
        failed(r.reason);
        return cpuEncode(frames[i], opts[i]);
      });
    },
  };
}

/**
 * The backend's batch encoder with one settled result per frame: the GPU codec's own
 * (`encodeManySettled`), else `encodeMany`, retried frame by frame when the batch fails so
 * that one frame's failure stays its own.
 */
function settledEncoder(backend: CodecBackend): SettledBatchEncoder<Uint8Array> {
  if (backend.gpu) return backend.gpu.encodeManySettled;
  return async function encodeManySettled(frames, opts) {
    try {
      return (await backend.encodeMany(frames, opts)).map((value) => ({ status: "fulfilled", value }));
    } catch (err) {
      if (frames.length === 1) return [{ status: "rejected", reason: err }];
      return await Promise.allSettled(
        frames.map(async (t, i) => (await backend.encodeMany([t], [opts[i]]))[0]),
      );
    }
  };
}
