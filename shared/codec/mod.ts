/**
 * KVSort: the error-bounded KV-cache codec, with its baselines. One call per frame
 * (`[n_kept, head_dim]` of one layer, KV head and K or V) or per whole-layer row
 * (`[n, nKvHeads * headDim]`, sorting across all heads); the last dimension is the sorted
 * axis. Stages live one per folder (`sort/`, `predict/`, `quantize/`, `entropy/`,
 * `lossless/`), composed in `pipeline.ts`; `baselines/` holds KIVI. See
 * ARCHITECTURE.md §4.
 *
 * With `predictor: "auto"` (what the hand-off asks for) each frame takes the cheapest, by a
 * sampled estimate, of no sort, the shared sort (Lehmer-coded indices), the token-axis
 * predictor and the model's calibrated cross-channel predictor (`predict/linear.ts`,
 * `predict/coefficients.ts`: `kv_predictor.bin` beside the model, named in streams by hash),
 * with Huffman tables per channel group where that pays (`entropy/grouped.ts`).
 *
 * @example
 * ```ts
 * import { decode, encode, inspect } from "./mod.ts";
 * const data = Float32Array.from({ length: 64 * 8 }, (_, i) => Math.cos(i / 7));
 * const bytes = encode({ dtype: "f32", shape: [64, 8], data }, { codec: "kvsort", errorBound: 1e-3, mode: "abs" });
 * const back = decode(bytes).data as Float32Array;
 * console.log(back.every((v, i) => Math.abs(v - data[i]) <= 1e-3), inspect(bytes).k); // true 8
 * ```
 * @module
 */
export { absoluteBound, CODECS, decode, decodeWithInfo, DEFAULT_K, encode, inspect } from "./codec.ts";
export { CorruptStreamError, StreamLimitError } from "./errors.ts";
export { DEFAULT_MAX_ELEMENTS, FORMAT_VERSION } from "./container.ts";
export { PREDICTORS } from "./predict/mod.ts";
export type { Predictor } from "./predict/mod.ts";
export { chooseK } from "./sort/auto_k.ts";
export type {
  CodecName,
  DecodeLimits,
  Dtype,
  EncodeOptions,
  PredictorName,
  StreamInfo,
  Tensor,
} from "./types.ts";
export { CODEC_IDS } from "./types.ts";
export { CODEC_TRAITS, type CodecTraits, isCodecName } from "./traits.ts";
