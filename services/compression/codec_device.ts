/**
 * The compression service's KVSort backend (KVRELAY_CODEC_DEVICE, `config.codecDevice`):
 * `cpu`, `webgpu` (any adapter, a software one included; no adapter is a start-up error),
 * or `auto` (WebGPU on a real GPU only, else the CPU). On the GPU, a frame whose GPU encode
 * fails for a reason other than bad options (device lost, out of memory) is encoded by the
 * CPU codec instead — the stream format is the same — and the first such failure is logged.
 * A request's frames go to the GPU together (`gpuBatchEncoder`, `encodeMany`): one GPU
 * submission per stage for all of them instead of three round trips per frame.
 * @module
 */
import { encode as cpuEncode, type EncodeOptions, type Tensor } from "../../shared/codec/mod.ts";
import type { BatchFrameEncoder } from "../../shared/pipeline/compress_stage.ts";
import type { CodecBackend } from "../../shared/codec/webgpu/mod.ts";

export { selectCodecBackend } from "../../shared/codec/webgpu/mod.ts";
export type { CodecBackend } from "../../shared/codec/webgpu/mod.ts";

/**
 * Runs GPU work, or its CPU twin when the GPU fails for a reason other than bad options
 * (`RangeError`, `TypeError`: the CPU codec refuses those too); the first failure is logged.
 */
function cpuFallback(
  log: (line: string) => void,
  what: string,
): <R>(onGpu: () => Promise<R>, onCpu: () => R) => Promise<R> {
  let warned = false;
  return async function gpuOrCpu(onGpu, onCpu) {
    try {
      return await onGpu();
    } catch (err) {
      if (err instanceof RangeError || err instanceof TypeError) throw err; // bad request, same as the CPU
      if (!warned) {
        warned = true;
        log(
          `[compression] WebGPU encode failed (${
            (err as Error)?.message ?? err
          }); CPU codec for such ${what}`,
        );
      }
      return onCpu();
    }
  };
}

/** The backend's encoder, falling back to the CPU codec for a frame the GPU fails on. */
export function gpuFrameEncoder(
  backend: CodecBackend,
  log: (line: string) => void = console.error,
): (t: Tensor, opts: EncodeOptions) => Promise<Uint8Array> {
  const gpuOrCpu = cpuFallback(log, "frames");
  return function encodeFrameOnGpu(t, opts) {
    return gpuOrCpu(() => backend.encode(t, opts), () => cpuEncode(t, opts));
  };
}

/**
 * The backend's batch encoder (`encodeMany`) for `CompressionJob.finishAsync`; when the GPU
 * fails on a batch for a reason other than bad options, the batch is encoded by the CPU
 * codec, and the first such failure is logged.
 */
export function gpuBatchEncoder(
  backend: CodecBackend,
  log: (line: string) => void = console.error,
): BatchFrameEncoder {
  const gpuOrCpu = cpuFallback(log, "batches");
  return {
    encodeMany(frames: Tensor[], opts: EncodeOptions[]): Promise<Uint8Array[]> {
      return gpuOrCpu(
        () => backend.encodeMany(frames, opts),
        () => frames.map((t, i) => cpuEncode(t, opts[i])),
      );
    },
  };
}
