/**
 * The fast format: blockwise prequantization, fixed-length codes per block and outliers
 * apart (layout and reasoning in ./layout.ts). Encoder and decoder are plain typed-array loops,
 * with WebAssembly simd128 kernels (./wasm/) taking fp32 frames, byte for byte the same; the
 * same layout is what a GPU kernel writes block by block.
 * @module
 */
export { fastEncode } from "./encode.ts";
export type { FastEncoded, FastFrame, FastParams } from "./encode.ts";
export { fastDecode } from "./decode.ts";
export type { FastDecoded } from "./decode.ts";
export { BLOCK, type FastHeader, type FastPredictor } from "./layout.ts";
export { setFastWasm } from "./wasm/mod.ts";
export type { FastBatchCodec } from "./batch_codec.ts";
