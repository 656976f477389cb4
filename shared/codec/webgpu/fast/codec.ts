/**
 * The fast codec on WebGPU, batch by batch: `encodeMany` gives the CPU encoder's streams byte
 * for byte, `decodeMany` the CPU decoder's values bit for bit (and its errors). Frames the GPU
 * path does not take run on the CPU codec inside the same call.
 * @module
 */
import type { DecodeLimits, EncodeOptions, Tensor } from "../../types.ts";
import { acquireGpu, type AcquireOptions, type GpuHandle } from "../device.ts";
import { FastGpu } from "./context.ts";
import type { FastBatchCodec } from "../../fast/batch_codec.ts";
import { fastEncodeMany, type FastEncodeResult, type FastRunOptions } from "./encode.ts";
import { fastDecodeMany, type FastDecodeResult } from "./decode.ts";

/** The fast codec's batch calls on one WebGPU device. */
export interface GpuFastBatch extends FastBatchCodec {
  /** `encodeMany` with which backend made each stream and each batch's GPU time. */
  encodeManyWithInfo(
    frames: Tensor[],
    opts: EncodeOptions | EncodeOptions[],
    run?: FastRunOptions,
  ): Promise<FastEncodeResult>;
  decodeManyWithInfo(
    streams: Uint8Array[],
    limits?: DecodeLimits,
    run?: FastRunOptions,
  ): Promise<FastDecodeResult>;
}

/** A device of its own with the fast codec on it. */
export interface GpuFastCodec extends GpuFastBatch {
  readonly adapter: GpuHandle["adapter"];
  readonly software: boolean;
  /** Whether GPU time comes from timestamp queries. */
  readonly timestamps: boolean;
  /** Releases the device. */
  destroy(): void;
}

function firstRejection<T>(settled: PromiseSettledResult<T>[]): T[] {
  const failed = settled.find((s) => s.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
}

function batchOn(ready: () => Promise<FastGpu>): GpuFastBatch {
  return {
    encodeMany: async (f, o) => firstRejection((await fastEncodeMany(await ready(), f, o)).results),
    encodeManySettled: async (f, o) => (await fastEncodeMany(await ready(), f, o)).results,
    encodeManyWithInfo: async (f, o, r) => fastEncodeMany(await ready(), f, o, r),
    decodeMany: async (s, l) => firstRejection((await fastDecodeMany(await ready(), s, l)).results),
    decodeManyWithInfo: async (s, l, r) => fastDecodeMany(await ready(), s, l, r),
  };
}

/**
 * The fast codec's batch encoder and decoder on `device` (a device of `acquireGpu`, or any
 * `GPUDevice`); kernels compile on first use. The device stays the caller's.
 *
 * @example
 * ```ts ignore
 * import { acquireGpu, gpuFastBatchEncoder } from "../mod.ts";
 * const gpu = await acquireGpu();
 * const fast = gpuFastBatchEncoder(gpu);
 * const t = { dtype: "f32" as const, shape: [64, 8], data: Float32Array.from({ length: 512 }, (_, i) => Math.sin(i)) };
 * const [bytes] = await fast.encodeMany([t], { codec: "fast", errorBound: 1e-3, mode: "abs" });
 * const [back] = await fast.decodeMany([bytes]);
 * ```
 */
export function gpuFastBatchEncoder(device: GpuHandle | GPUDevice): GpuFastBatch {
  const dev = "device" in device ? device.device : device;
  let ready: Promise<FastGpu> | undefined;
  return batchOn(() => ready ??= FastGpu.create(dev));
}

/** Acquires a device (with a deadline) and compiles the fast codec's kernels on it. */
export async function createGpuFastCodec(
  opts: AcquireOptions & { handle?: GpuHandle } = {},
): Promise<GpuFastCodec> {
  const handle = opts.handle ?? await acquireGpu(opts);
  let gpu: FastGpu;
  try {
    gpu = await FastGpu.create(handle.device);
  } catch (err) {
    if (!opts.handle) handle.device.destroy();
    throw err;
  }
  return {
    ...batchOn(() => Promise.resolve(gpu)),
    adapter: handle.adapter,
    software: handle.software,
    timestamps: gpu.timestamps,
    destroy: () => handle.device.destroy(),
  };
}
