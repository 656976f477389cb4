/**
 * The fast codec on CUDA, loaded through `Deno.dlopen` (KVRELAY_CODEC_DEVICE=cuda): the same
 * options and stream format as the CPU codec, streams byte for byte the CPU encoder's, values
 * bit for bit the CPU decoder's. The kernels are ./*.cu (built by infra/cuda/build.sh); which
 * stage runs where is listed at the top of encode.ts and decode.ts.
 * @module
 */
export { createCudaFastCodec } from "./codec.ts";
export type { CudaCodecOptions, CudaFastCodec } from "./codec.ts";
export { CudaUnavailableError, DEFAULT_CUDA_LIB, loadCudaLibrary } from "./library.ts";
export type { CudaDecodeResult, CudaDecodeRunOptions } from "./decode.ts";
export type { CudaEncodeResult, CudaFrameInfo, CudaRunOptions, CudaTiming } from "./encode.ts";
