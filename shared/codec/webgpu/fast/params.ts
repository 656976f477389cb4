/**
 * The fast encoder's per-frame decisions that the GPU path makes on the host, in the CPU
 * encoder's own double arithmetic (../../fast/encode.ts `fastEncode`, `finiteRange`,
 * `quantStep`): the options, the absolute bound from the frame's finite range (read back from
 * the GPU as ordered keys, so exactly the CPU's `lo`/`hi`), the fp32 step and its inverse,
 * and whether the GPU takes the frame at all.
 *
 * The GPU takes a frame only where every one of its decisions provably equals the CPU's:
 * the `f32` input, `eb > 0`, the fast branch of `quantStep` (no value needs its own check),
 * and `step >= 2^-124`. The last keeps every product of a subnormal input below 1/4 in
 * magnitude (`|x · inv| < 2^-126 · 2^124`), so `q = 0` whether the GPU flushes subnormals
 * (NVIDIA does in compute shaders) or not; products that are themselves subnormal round to
 * 0 either way. Frames outside this set are encoded by the CPU encoder, with its errors.
 * @module
 */
import { boundOptions } from "../../codec.ts";
import type { EncodeOptions } from "../../types.ts";

export type FastPredictorOption = "auto" | "none" | "delta";

/** The fast codec's options, defaults applied (as `encode` resolves them). */
export interface FastOptions {
  errorBound: number;
  mode: "abs" | "rel";
  predictor: FastPredictorOption;
}

/** `encode`'s option checks for the fast codec: `RangeError` for what it refuses. */
export function fastOptions(opts: EncodeOptions): FastOptions {
  const { errorBound, mode } = boundOptions(opts);
  const p = opts.fastPredictor ?? "auto";
  if (p !== "auto" && p !== "none" && p !== "delta") {
    throw new RangeError(`the fast codec's predictor is auto, none or delta, got '${p}'`);
  }
  return { errorBound, mode, predictor: p };
}

const keyBuf = new Uint32Array(1);
const keyF32 = new Float32Array(keyBuf.buffer);

/** The fp32 value of an ordered key (the inverse of the kernels' `okey`). */
export function keyValue(k: number): number {
  keyBuf[0] = k & 0x80000000 ? k ^ 0x80000000 : ~k;
  return keyF32[0];
}

/** The fp32 bits of `v` (a value already representable in fp32). */
export function f32Bits(v: number): number {
  keyF32[0] = v;
  return keyBuf[0];
}

/** What the GPU needs to encode a frame, and what the body header records. */
export interface FrameParams {
  eb: number;
  step: number;
  inv: number;
}

/** Smallest step the GPU path takes (see the module comment). */
export const MIN_GPU_STEP = 2 ** -124;

/**
 * The bound, step and inverse of a frame whose finite values span the ordered keys
 * `[minKey, maxKey]` (`minKey > maxKey`: no finite value), or why the CPU encodes it.
 */
export function frameParams(o: FastOptions, minKey: number, maxKey: number): FrameParams | string {
  let lo = 0, hi = 0, maxAbs = 0;
  if (minKey <= maxKey) {
    lo = keyValue(minKey);
    hi = keyValue(maxKey);
    maxAbs = Math.max(-lo, hi);
  }
  const eb = o.mode === "rel" ? o.errorBound * (hi - lo) : o.errorBound;
  if (!Number.isFinite(eb)) return `error bound ${eb} is not finite`;
  if (!(eb > 0)) return "error bound 0 (every value checked)";
  const shrink = (1 + maxAbs / eb) * 2 ** -20;
  if (!(shrink <= 2 ** -5)) return "values over 2^15 bounds from 0 (every value checked)";
  const step = Math.fround(2 * eb * (1 - shrink));
  if (!(step >= MIN_GPU_STEP) || !Number.isFinite(step)) return `quantization step ${step}`;
  return { eb, step, inv: Math.fround(1 / step) };
}

/**
 * Values of the row groups `choosePredictor` samples: the GPU adds their bit counts in u32,
 * so a frame whose sample could pass 2^32 bits (25 bits a value at most) goes to the CPU.
 */
export function sampledValues(rows: number, cols: number): number {
  const groups = Math.ceil(rows / 32);
  const stride = Math.max(1, Math.floor(groups / 8));
  let v = 0;
  for (let g = 0; g < groups; g += stride) v += Math.min(32, rows - g * 32) * cols;
  return v;
}

/** `choosePredictor`'s sampling stride over row groups. */
export const sampleStride = (rows: number): number => Math.max(1, Math.floor(Math.ceil(rows / 32) / 8));
