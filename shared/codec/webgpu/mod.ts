/**
 * KVSort on WebGPU: the same options and the same stream format as the CPU codec
 * (../mod.ts) — GPU streams decode with the CPU decoder and CPU streams with the GPU
 * decoder, the error bound holding exactly both ways. Which stage runs where is listed at
 * the top of encode.ts and decode.ts; README.md has the overview.
 *
 * @example
 * ```ts ignore
 * import { createGpuCodec } from "./mod.ts";
 * const gpu = await createGpuCodec({ timeoutMs: 5000 });
 * const t = { dtype: "f32" as const, shape: [4, 8], data: Float32Array.from({ length: 32 }, (_, i) => Math.sin(i)) };
 * const back = await gpu.decode(await gpu.encode(t, { codec: "kvsort", errorBound: 1e-2, mode: "rel", indexShare: 2 }));
 * console.log(back.shape); // [4, 8]
 * gpu.destroy();
 * ```
 * @module
 */
export { acquireGpu, GpuUnavailableError } from "./device.ts";
export type { AcquireOptions, GpuHandle } from "./device.ts";
export { createGpuCodec } from "./codec.ts";
export type { GpuCodec } from "./codec.ts";
export type { GpuRunInfo, GpuRunOptions } from "./encode.ts";
export type { GpuTiming } from "./gpu.ts";
export { coalesce } from "./coalesce.ts";
export type { CoalesceOptions, SettledBatchEncoder } from "./coalesce.ts";
export { cpuBackend, selectCodecBackend } from "./select.ts";
export { createGpuFastCodec, gpuFastBatchEncoder } from "./fast/mod.ts";
export type {
  FastDecodeResult,
  FastEncodeResult,
  FastRunOptions,
  GpuFastBatch,
  GpuFastCodec,
} from "./fast/mod.ts";
export type { CodecBackend } from "./select.ts";
