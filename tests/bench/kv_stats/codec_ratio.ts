/**
 * Each codec's compression ratio on a set of frames, on the fp16 basis (2 bytes a value, the
 * cache as the hand-off would otherwise send it), with the error bound checked on decode.
 * Bounded codecs run at an absolute bound of rel × the frame's layer range (`layer_range.ts`);
 * the baselines run once. Every frame is encoded on its own, as the hand-off does, and the
 * ratio is 2 × values ÷ the bytes of every stream, container headers included.
 * @module
 */
import { CODEC_TRAITS, CODECS, decode, encode, type EncodeOptions } from "../../../shared/codec/mod.ts";
import type { CoefficientSet } from "../../../shared/codec/predict/coefficients.ts";
import { fromFloat32, toFloat32 } from "../../../shared/dtype/mod.ts";
import type { KvFrame } from "./frame.ts";
import { layerKey, layerRanges } from "./layer_range.ts";

/** A codec as measured: its label, whether it keeps a bound, and its options for one frame. */
export interface CodecCase {
  name: string;
  bounded: boolean;
  /** Encode options for `f` at absolute bound `abs` (ignored by unbounded codecs). */
  options(f: KvFrame, abs: number): EncodeOptions;
  /** Encode the values cast to fp16 (zstd on the fp16 cache), not the fp32 values. */
  fp16Input?: boolean;
}

/**
 * Every bounded codec of the traits table, with kvsort twice: as the hand-off sends it
 * (`predictor: "auto"`, with the model's cross-channel coefficients when given) and as the
 * KVSort algorithm alone (`kvsort-k<k>`: a sort index shared by k tokens, quantize-first
 * prediction); then the fp16, fp16 + zstd and zstd -3 on fp16 baselines.
 */
export function codecCases(k: number, coefficients?: CoefficientSet): CodecCase[] {
  const cases: CodecCase[] = [];
  for (const codec of CODECS.filter((c) => CODEC_TRAITS[c].bounded)) {
    const base = (abs: number): EncodeOptions => ({ codec, errorBound: abs, mode: "abs" });
    if (codec !== "kvsort") {
      cases.push({ name: codec, bounded: true, options: (_, abs) => base(abs) });
      continue;
    }
    cases.push({
      name: "kvsort",
      bounded: true,
      options: (f, abs) => ({
        ...base(abs),
        predictor: "auto",
        role: f.kind === "K" ? "key" : "value",
        ...(coefficients ? { coefficients, layer: f.layer, head: f.head } : {}),
      }),
    });
    cases.push({
      name: `kvsort-k${k}`,
      bounded: true,
      options: (_, abs) => ({ ...base(abs), indexShare: k, predictor: "qfirst" }),
    });
  }
  cases.push({ name: "fp16", bounded: false, options: () => ({ codec: "fp16" }) });
  cases.push({ name: "fp16_zstd", bounded: false, options: () => ({ codec: "fp16_zstd" }) });
  cases.push({
    name: "zstd-3",
    bounded: false,
    fp16Input: true,
    options: () => ({ codec: "zstd", zstdLevel: 3 }),
  });
  return cases;
}

/** One codec on one set of frames at one bound. */
export interface CodecRatioRow {
  /** K, V, or K+V for both. */
  kind: string;
  codec: string;
  /** The relative bound (of the layer's range); null for the baselines. */
  rel: number | null;
  ratio_fp16: number;
  values: number;
  bytes: number;
  /** Largest |decoded − original| ÷ the frame's absolute bound, over the frames; null unbounded. */
  max_err_over_bound: number | null;
  /** Largest |decoded − original| ÷ the frame's layer range, over the frames. */
  max_err_rel: number;
  /** Every decoded value within its bound (null unbounded). */
  bound_ok: boolean | null;
}

/** Encodes and decodes every frame of `frames` with `c` at `rel` (null for an unbounded codec). */
export function codecRatio(
  kind: string,
  frames: readonly KvFrame[],
  c: CodecCase,
  rel: number | null,
): CodecRatioRow {
  if (c.bounded !== (rel !== null)) {
    throw new RangeError(`${c.name}: give a bound exactly when the codec keeps one`);
  }
  if (rel !== null && !(rel > 0)) throw new RangeError(`${c.name}: bad relative bound ${rel}`);
  const ranges = layerRanges(frames);
  let values = 0, bytes = 0, overBound = 0, errRel = 0;
  for (const f of frames) {
    const range = ranges.get(layerKey(f))!;
    const abs = (rel ?? 0) * range;
    const tensor = fromFloat32(f.data, [f.rows, f.cols], c.fp16Input ? "f16" : "f32");
    const stream = encode(tensor, c.options(f, abs));
    const back = toFloat32(decode(stream));
    let err = 0;
    for (let i = 0; i < f.data.length; i++) err = Math.max(err, Math.abs(back[i] - f.data[i]));
    values += f.data.length;
    bytes += stream.length;
    overBound = Math.max(overBound, abs > 0 ? err / abs : err > 0 ? Infinity : 0);
    errRel = Math.max(errRel, range > 0 ? err / range : 0);
  }
  return {
    kind,
    codec: c.name,
    rel,
    ratio_fp16: (2 * values) / bytes,
    values,
    bytes,
    max_err_over_bound: c.bounded ? overBound : null,
    max_err_rel: errRel,
    bound_ok: c.bounded ? overBound <= 1 : null,
  };
}
