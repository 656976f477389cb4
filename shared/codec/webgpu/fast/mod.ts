/**
 * The fast codec (../../fast/) on WebGPU: many frames per submission, the CPU codec's streams
 * byte for byte and its decoded values bit for bit. README.md (one folder up) has the overview.
 * @module
 */
export { createGpuFastCodec, gpuFastBatchEncoder } from "./codec.ts";
export type { GpuFastBatch, GpuFastCodec } from "./codec.ts";
export type { FastBatchInfo, FastEncodeResult, FastFrameInfo, FastRunOptions } from "./encode.ts";
export type { FastDecodeResult } from "./decode.ts";
export type { FastTiming } from "./context.ts";
