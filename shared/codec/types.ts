/**
 * Public types of the codec: names, options and what `inspect` reports.
 * @module
 */
import type { GridPredictorName, PredictorName } from "./predict/mod.ts";
import type { CoefficientSet } from "./predict/coefficients.ts";
export type { Dtype, Tensor } from "../dtype/mod.ts";
export type { PredictorName } from "./predict/mod.ts";

export type { CodecName } from "./traits.ts";
export { CODEC_IDS } from "./traits.ts";
import type { CodecName } from "./traits.ts";

/** Options for `encode`. The last dimension is the sorted axis; rows are all leading dims. */
export interface EncodeOptions {
  codec: CodecName;
  /** Error bound (kvsort, sz); `abs` by default, or a fraction of the value range with `rel`. */
  errorBound?: number;
  mode?: "abs" | "rel";
  /** Rows sharing one sort index (kvsort): a number ≥ 1, or `auto` (sampled estimate). Default 8. */
  indexShare?: number | "auto";
  /**
   * Predictor for kvsort and sz (default `qfirst`). `auto`: per frame, the cheapest on a sample
   * of no sort, the shared sort (kvsort), the token-axis predictor (`token`) and the
   * cross-channel predictor (`cross`, when `coefficients` hold the frame's `role`, `layer` and
   * `head`); the CPU codec alone runs `auto`, `token` and `cross`.
   */
  predictor?: GridPredictorName | "auto" | "token" | "cross";
  /** Calibrated cross-channel predictor coefficients of the model the KV comes from. */
  coefficients?: CoefficientSet;
  /** The frame's layer and KV head (with `role`), to find its coefficients. */
  layer?: number;
  head?: number;
  /** Predictor of the fast codec: `auto` (default: the cheaper on a sample), `none` or `delta`. */
  fastPredictor?: "auto" | "none" | "delta";
  /** KIVI grouping: keys per channel, values per token (default `key`); K or V for `coefficients`. */
  role?: "key" | "value";
  /** zstd level for the lossless stage and the zstd codec (default 1 for kvsort/sz, 3 for zstd). */
  zstdLevel?: number;
  /** Whether kvsort/sz try zstd on their stage bytes (default `auto`: keep it when smaller). */
  lossless?: "auto" | "none";
}

/** Caps the decoder applies before allocating. */
export interface DecodeLimits {
  /** Largest tensor accepted, in elements (default 2^27). */
  maxElements?: number;
}

/** What a stream holds, for `inspect` and the CLI. */
export interface StreamInfo {
  version: number;
  codec: CodecName;
  dtype: "f32" | "f16" | "bf16";
  shape: number[];
  elements: number;
  totalBytes: number;
  /** crc32 of the reconstructed values' bytes, as stored. */
  digest: number;
  /** Absolute error bound applied (kvsort, sz). */
  eb?: number;
  mode?: "abs" | "rel";
  /** The bound as requested (before `rel` scaling). */
  errorBound?: number;
  k?: number;
  predictor?: PredictorName;
  /** The linear predictor's kind and, for `cross`, its coefficient set's hash. */
  linear?: { kind: "token" | "cross"; coefficients?: string };
  role?: "key" | "value";
  exceptions?: number;
  /** Blocks whose largest code was stored apart (fast). */
  outliers?: number;
  /** The predictor the fast codec chose. */
  fastPredictor?: "none" | "delta";
  /** Bytes of each part of the stream. */
  stages: Record<string, number>;
}
