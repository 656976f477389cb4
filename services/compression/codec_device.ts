/**
 * The compression service's KVSort backend (KVRELAY_CODEC_DEVICE, `config.codecDevice`):
 * `cpu`, `webgpu` (any adapter, a software one included; no adapter is a start-up error),
 * or `auto` (WebGPU on a real GPU only, else the CPU). On the GPU, a frame whose GPU encode
 * fails for a reason other than bad options (device lost, out of memory) is encoded by the
 * CPU codec instead — the stream format is the same — and the first such failure is logged.
 * @module
 */
import { encode as cpuEncode, type EncodeOptions, type Tensor } from "../../shared/codec/mod.ts";
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
