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

/** The backend's encoder, falling back to the CPU codec for a frame the GPU fails on. */
export function gpuFrameEncoder(
  backend: CodecBackend,
  log: (line: string) => void = console.error,
): (t: Tensor, opts: EncodeOptions) => Promise<Uint8Array> {
  let warned = false;
  return async function encodeFrameOnGpu(t, opts) {
    try {
      return await backend.encode(t, opts);
    } catch (err) {
      if (err instanceof RangeError || err instanceof TypeError) throw err; // bad request, same as the CPU
      if (!warned) {
        warned = true;
        log(
          `[compression] WebGPU encode failed (${(err as Error)?.message ?? err}); CPU codec for such frames`,
        );
      }
      return cpuEncode(t, opts);
    }
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
  let warned = false;
  return {
    async encodeMany(frames: Tensor[], opts: EncodeOptions[]): Promise<Uint8Array[]> {
      try {
        return await backend.encodeMany(frames, opts);
      } catch (err) {
        if (err instanceof RangeError || err instanceof TypeError) throw err; // bad request, same as the CPU
        if (!warned) {
          warned = true;
          log(
            `[compression] WebGPU encode failed (${
              (err as Error)?.message ?? err
            }); CPU codec for such batches`,
          );
        }
        return frames.map((t, i) => cpuEncode(t, opts[i]));
      }
    },
  };
}
