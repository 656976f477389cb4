/**
 * Which backend runs the KVSort codec for a `DeviceChoice` (KVRELAY_CODEC_DEVICE):
 * `cpu` — the CPU codec; `webgpu` — the GPU codec on whatever adapter WebGPU offers, a
 * software one included, or a clear error when there is none; `auto` — the GPU codec only
 * on a real GPU (not a fallback/software adapter such as Mesa llvmpipe), else the CPU.
 * @module
 */
import { decode as cpuDecode, encode as cpuEncode } from "../codec.ts";
import type { DecodeLimits, EncodeOptions, Tensor } from "../types.ts";
import { type AcquireOptions, GpuUnavailableError } from "./device.ts";
import { createGpuCodec, type GpuCodec } from "./codec.ts";

/** A codec backend as the compression service uses it. */
export interface CodecBackend {
  kind: "cpu" | "webgpu";
  /** One line for logs: the backend, its adapter, and why it was chosen. */
  description: string;
  encode(t: Tensor, opts: EncodeOptions): Promise<Uint8Array>;
  /** Many frames at once (on the GPU: one submission per stage for all of them); same streams as `encode`. */
  encodeMany(frames: Tensor[], opts: EncodeOptions | EncodeOptions[]): Promise<Uint8Array[]>;
  decode(bytes: Uint8Array, limits?: DecodeLimits): Promise<Tensor>;
  /** The GPU codec when kind is webgpu. */
  gpu?: GpuCodec;
  destroy(): void;
}

/** The CPU codec behind the backend interface. */
export function cpuBackend(why = "KVRELAY_CODEC_DEVICE=cpu"): CodecBackend {
  return {
    kind: "cpu",
    description: `cpu (${why})`,
    encode: (t, o) => Promise.resolve(cpuEncode(t, o)),
    encodeMany: (f, o) => Promise.resolve(f.map((t, i) => cpuEncode(t, Array.isArray(o) ? o[i] : o))),
    decode: (b, l) => Promise.resolve(cpuDecode(b, l)),
    destroy: () => {},
  };
}

/**
 * Resolves a device choice to a backend. `webgpu` throws `GpuUnavailableError` when no
 * adapter answers; `auto` never throws for want of a GPU.
 *
 * @example
 * ```ts ignore
 * import { selectCodecBackend } from "./select.ts";
 * const backend = await selectCodecBackend("auto");
 * console.log(backend.description); // "cpu (auto: WebGPU adapter 'llvmpipe ...' is a software rasterizer)"
 * backend.destroy();
 * ```
 */
export async function selectCodecBackend(
  choice: "cpu" | "webgpu" | "auto",
  opts: AcquireOptions = {},
): Promise<CodecBackend> {
  if (choice === "cpu") return cpuBackend();
  let gpu: GpuCodec;
  try {
    gpu = await createGpuCodec({ ...opts, requireHardware: choice === "auto" });
  } catch (err) {
    if (choice === "auto" && err instanceof GpuUnavailableError) return cpuBackend(`auto: ${err.message}`);
    if (err instanceof GpuUnavailableError) {
      throw new GpuUnavailableError(`KVRELAY_CODEC_DEVICE=webgpu but ${err.message}`, { cause: err });
    }
    throw err;
  }
  const kind = gpu.software ? "software adapter" : "GPU";
  return {
    kind: "webgpu",
    description: `webgpu on ${kind} '${gpu.adapter.description}' (${choice})`,
    encode: gpu.encode,
    encodeMany: gpu.encodeMany,
    decode: gpu.decode,
    gpu,
    destroy: () => gpu.destroy(),
  };
}
