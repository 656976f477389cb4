/**
 * `createGpuCodec()`: the KVSort codec on WebGPU, with the CPU codec's options and stream
 * format. `encode`/`decode` mirror `encode`/`decode` of ../codec.ts but return promises;
 * the `...WithInfo` variants also say which backend ran and how long the GPU took.
 * @module
 */
import { type GpuFastBatch, gpuFastBatchEncoder } from "./fast/codec.ts";
import type { DecodeLimits, EncodeOptions, Tensor } from "../types.ts";
import { acquireGpu, type AcquireOptions, type GpuHandle } from "./device.ts";
import { GpuContext } from "./gpu.ts";
import { gpuEncode, type GpuRunInfo, type GpuRunOptions } from "./encode.ts";
import { gpuDecode } from "./decode.ts";
import { gpuEncodeMany, gpuEncodeManySettled } from "./batch.ts";

/** The GPU codec bound to one device. */
export interface GpuCodec {
  /** The adapter it runs on. */
  readonly adapter: GpuHandle["adapter"];
  /** True on a software adapter (llvmpipe). */
  readonly software: boolean;
  /** Encodes like `encode()` of the CPU codec; the stream decodes with either decoder. */
  encode(t: Tensor, opts: EncodeOptions): Promise<Uint8Array>;
  /** Decodes like `decode()` of the CPU codec (same errors: `CorruptStreamError`, `StreamLimitError`). */
  decode(bytes: Uint8Array, limits?: DecodeLimits): Promise<Tensor>;
  encodeWithInfo(
    t: Tensor,
    opts: EncodeOptions,
    run?: GpuRunOptions,
  ): Promise<{ bytes: Uint8Array; info: GpuRunInfo }>;
  /**
   * Encodes many frames with their GPU round trips gathered (three submissions per batch,
   * not per frame; batch.ts): each stream is the one `encode` gives for that frame. One
   * options object for all frames or one per frame.
   */
  encodeMany(frames: Tensor[], opts: EncodeOptions | EncodeOptions[]): Promise<Uint8Array[]>;
  /**
   * Like `encodeMany`, but each frame settles on its own: a failing frame is a rejected
   * entry, the others' streams still come back.
   */
  encodeManySettled(
    frames: Tensor[],
    opts: EncodeOptions | EncodeOptions[],
  ): Promise<PromiseSettledResult<Uint8Array>[]>;
  encodeManyWithInfo(
    frames: Tensor[],
    opts: EncodeOptions | EncodeOptions[],
    run?: GpuRunOptions,
  ): Promise<{ bytes: Uint8Array; info: GpuRunInfo }[]>;
  decodeWithInfo(
    bytes: Uint8Array,
    limits?: DecodeLimits,
    run?: GpuRunOptions,
  ): Promise<{ tensor: Tensor; info: GpuRunInfo }>;
  /** The fast codec's batch calls on the same device (fast/codec.ts). */
  readonly fast: GpuFastBatch;
  /** Releases the device. */
  destroy(): void;
}

/**
 * Acquires a WebGPU device (with a deadline) and compiles the codec's kernels. Throws
 * `GpuUnavailableError` when there is no usable adapter.
 *
 * @example
 * ```ts ignore
 * import { createGpuCodec } from "./mod.ts";
 * import { decode } from "../mod.ts";
 * const gpu = await createGpuCodec();
 * const data = Float32Array.from({ length: 64 * 8 }, (_, i) => Math.cos(i / 7));
 * const bytes = await gpu.encode({ dtype: "f32", shape: [64, 8], data }, { codec: "kvsort", errorBound: 1e-3, mode: "abs" });
 * console.log(decode(bytes).shape); // [64, 8] — the CPU decoder reads GPU streams
 * gpu.destroy();
 * ```
 */
export async function createGpuCodec(opts: AcquireOptions & { handle?: GpuHandle } = {}): Promise<GpuCodec> {
  const handle = opts.handle ?? await acquireGpu(opts);
  let ctx: GpuContext;
  try {
    ctx = await GpuContext.create(handle);
  } catch (err) {
    handle.device.destroy();
    throw err;
  }
  return {
    adapter: handle.adapter,
    software: handle.software,
    encode: async (t, o) => (await gpuEncode(ctx, t, o)).bytes,
    decode: async (b, l) => (await gpuDecode(ctx, b, l)).tensor,
    encodeWithInfo: (t, o, r) => gpuEncode(ctx, t, o, r),
    encodeMany: async (f, o) => (await gpuEncodeMany(ctx, f, o)).map((x) => x.bytes),
    encodeManySettled: async (f, o) =>
      (await gpuEncodeManySettled(ctx, f, o)).map((s) =>
        s.status === "fulfilled" ? { status: "fulfilled", value: s.value.bytes } : s
      ),
    encodeManyWithInfo: (f, o, r) => gpuEncodeMany(ctx, f, o, r),
    decodeWithInfo: (b, l, r) => gpuDecode(ctx, b, l, r),
    fast: gpuFastBatchEncoder(handle),
    destroy: () => handle.device.destroy(),
  };
}
