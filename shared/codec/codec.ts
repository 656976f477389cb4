/**
 * `encode`, `decode` and `inspect`: the container around every codec. `encode` resolves
 * the options (error bound, k, predictor), runs the codec, checks the error-bound guarantee
 * on its own output and writes header + body; `decode` validates everything it reads and
 * compares the digest of what it rebuilt with the one the encoder stored.
 * @module
 */
import { ByteReader } from "./bytes.ts";
import { checkTensor, DTYPE_BYTES, type Tensor } from "../dtype/mod.ts";
import { CorruptStreamError } from "./errors.ts";
import { DEFAULT_MAX_ELEMENTS, digestOf, FORMAT_VERSION, readHeader, writeHeader } from "./container.ts";
import { type Frame, szDecode, szEncode } from "./pipeline.ts";
import { LINEAR_PREDICTOR, type Predictor, PREDICTORS } from "./predict/mod.ts";
import { chooseFrameCoding, type FrameChoice } from "./predict/choose.ts";
import type { LinearSpec } from "./predict/linear.ts";
import { findPredictor } from "./predict/coefficients.ts";
import { chooseK } from "./sort/auto_k.ts";
import { loadLossless, type LosslessInfo, type LosslessMode, saveLossless } from "./lossless/zstd.ts";
import { kiviDecode, kiviEncode } from "./baselines/kivi.ts";
import { castToF16, widenF16 } from "./baselines/fp16.ts";
import { fastDecode, fastEncode } from "./fast/mod.ts";
import { CODEC_TRAITS } from "./traits.ts";
import { crc32 } from "node:zlib";
import { firstBoundViolation } from "./assemble.ts";
import type { DecodeLimits, EncodeOptions, StreamInfo } from "./types.ts";
import { f16Table32 } from "../dtype/mod.ts";
import { scratchF32 } from "./scratch.ts";
import { KV_DEFAULTS } from "../config/kv_defaults.ts";

const KIVI_BITS = { kivi8: 8, kivi4: 4, kivi2: 2 } as const;
/** Default index sharing for kvsort (the KV settings' default). */
export const DEFAULT_K: number | "auto" = KV_DEFAULTS.indexShare;

function frameOf(t: Tensor): Frame {
  checkTensor(t);
  const cols = t.shape.length === 0 ? 1 : t.shape[t.shape.length - 1];
  const n = t.data.length;
  const rows = cols === 0 ? 0 : n / cols;
  const x = t.dtype === "f32" ? t.data as Float32Array : toFloat32Scratch(t.data as Uint16Array, t.dtype);
  const bits = t.dtype === "f32"
    ? new Uint32Array(t.data.buffer, t.data.byteOffset, n)
    : t.data as Uint16Array;
  return { x, bits, dtype: t.dtype, rows, cols };
}

/** fp16/bf16 bits as fp32 in a scratch buffer (valid until the next encode). */
function toFloat32Scratch(src: Uint16Array, dtype: "f16" | "bf16"): Float32Array {
  const n = src.length;
  const out = scratchF32("enc.x", n);
  if (dtype === "f16") {
    const table = f16Table32();
    for (let i = 0; i < n; i++) out[i] = table[src[i]];
  } else {
    const u = new Uint32Array(out.buffer, 0, n);
    for (let i = 0; i < n; i++) u[i] = src[i] << 16;
  }
  return out;
}

/** The options of kvsort and sz that `encode` resolves before looking at the values. */
export interface BoundOptions {
  errorBound: number;
  mode: "abs" | "rel";
  /** The grid predictor, or the linear stage when `adaptive` is set. */
  predictor: Predictor;
  /**
   * `auto`: each frame takes the cheapest of no sort, the shared sort, the token-axis and the
   * cross-channel predictor on a sample; `token`/`cross`: that linear predictor. The CPU codec
   * alone does these (a GPU backend sees the linear predictor's name and leaves the frame to it).
   */
  adaptive?: "auto" | "token" | "cross";
}

/**
 * The predictor kvsort and sz use when none is named: `qfirst`, the one both backends run (the
 * hand-off asks for `auto` where the CPU codec encodes).
 */
export const DEFAULT_PREDICTOR = "qfirst";

/**
 * kvsort/sz's error bound, mode and predictor, defaults applied; `RangeError` when one is bad.
 * The WebGPU encoder resolves them here too, so both backends accept and reject the same options.
 */
export function boundOptions(opts: EncodeOptions): BoundOptions {
  const errorBound = opts.errorBound ?? KV_DEFAULTS.errorBound;
  const mode = opts.mode ?? KV_DEFAULTS.errorMode;
  if (!(errorBound >= 0) || !Number.isFinite(errorBound)) {
    throw new RangeError(`bad error bound ${errorBound}`);
  }
  if (mode !== "abs" && mode !== "rel") throw new RangeError(`bad error-bound mode '${mode}'`);
  const name = opts.predictor ?? DEFAULT_PREDICTOR;
  if (name === "auto" || name === "token" || name === "cross") {
    return { errorBound, mode, predictor: LINEAR_PREDICTOR, adaptive: name };
  }
  const predictor = Object.hasOwn(PREDICTORS, name) ? PREDICTORS[name as keyof typeof PREDICTORS] : undefined;
  if (!predictor) throw new RangeError(`unknown predictor '${opts.predictor}'`);
  return { errorBound, mode, predictor };
}

/** kvsort's index sharing, default applied: a positive integer or `auto`; `RangeError` otherwise. */
export function indexShareOption(opts: EncodeOptions): number | "auto" {
  const share = opts.indexShare ?? DEFAULT_K;
  if (share === "auto" || Number.isSafeInteger(share) && share >= 1) return share;
  throw new RangeError(`index sharing must be a positive integer or 'auto', got ${share}`);
}

/** The fast format's predictor option: `auto`, `none` or `delta`; `RangeError` otherwise. */
function fastPredictorOption(p: string): "auto" | "none" | "delta" {
  if (p === "auto" || p === "none" || p === "delta") return p;
  throw new RangeError(`the fast codec's predictor is auto, none or delta, got '${p}'`);
}

/** The absolute bound for `errorBound` in `mode` over the frame's finite values. */
export function absoluteBound(x: Float32Array, errorBound: number, mode: "abs" | "rel"): number {
  if (mode === "abs") return errorBound;
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (!(hi >= lo) || !Number.isFinite(hi - lo)) {
    lo = Infinity, hi = -Infinity;
    for (const v of x) if (Number.isFinite(v)) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
  }
  return hi >= lo ? errorBound * (hi - lo) : 0;
}

/** Candidate k of the shared sort when the index sharing is `auto` (0: no sort). */
const AUTO_SORT_KS = [0, 1, 2, 4, 8, 16, 32];

/**
 * How an adaptive kvsort/sz frame is coded: `token`/`cross` as asked (`cross` needs the
 * frame's coefficients: `RangeError` without them), `auto` by the sampled estimate over no
 * sort, the shared sort (kvsort; every k of {@link AUTO_SORT_KS} when sharing is `auto`), the
 * token-axis predictor and, when the options carry coefficients for the frame's slot, the
 * cross-channel predictor.
 */
function adaptiveChoice(
  f: Frame,
  opts: EncodeOptions,
  c: { eb: number; share: number | "auto"; adaptive: "auto" | "token" | "cross" },
): FrameChoice {
  let cross: LinearSpec | undefined;
  const set = opts.coefficients;
  if (set && opts.layer !== undefined && opts.head !== undefined) {
    const p = set.cols === f.cols ? findPredictor(set, opts.role ?? "key", opts.layer, opts.head) : undefined;
    if (p) cross = { kind: "cross", set, p };
  }
  if (c.adaptive === "token") return { kind: "linear", spec: { kind: "token" } };
  if (c.adaptive === "cross") {
    if (!cross) {
      throw new RangeError(
        "the cross predictor needs coefficients for the frame: options coefficients, role, layer and head",
      );
    }
    return { kind: "linear", spec: cross };
  }
  const most = Math.max(f.rows, 1);
  const ks = c.share === 0
    ? [0]
    : c.share === "auto"
    ? AUTO_SORT_KS.filter((k) => k <= most)
    : [0, Math.min(c.share, most)];
  const linear: LinearSpec[] = [{ kind: "token" }, ...(cross ? [cross] : [])];
  return chooseFrameCoding(f.x, f, { eb: c.eb, ks, linear }).choice;
}

/**
 * Encodes a tensor. The last dimension is the sorted axis; all leading dims are rows.
 * Throws `TypeError` for a malformed tensor and `RangeError` for bad options.
 *
 * @example
 * ```ts
 * import { decode, encode } from "./mod.ts";
 * const t = { dtype: "f32" as const, shape: [4, 8], data: Float32Array.from({ length: 32 }, (_, i) => Math.sin(i)) };
 * const back = decode(encode(t, { codec: "kvsort", errorBound: 1e-2, mode: "rel", indexShare: 2 }));
 * console.log(back.shape); // [4, 8]
 * ```
 */
export function encode(t: Tensor, opts: EncodeOptions): Uint8Array {
  const f = frameOf(t);
  const codec = opts.codec;
  let body: Uint8Array, out: Float32Array | Uint16Array;
  let lossless: LosslessMode = "none";
  let level = opts.zstdLevel ?? 1;
  if (codec === "kvsort" || codec === "sz") {
    const { errorBound, mode, predictor, adaptive } = boundOptions(opts);
    const ebAbs = absoluteBound(f.x, errorBound, mode);
    if (!Number.isFinite(ebAbs)) throw new RangeError(`error bound ${ebAbs} is not finite`);
    const share = codec === "kvsort" ? indexShareOption(opts) : 0;
    if (adaptive) {
      const c = adaptiveChoice(f, opts, { eb: ebAbs, share, adaptive });
      const p = { ebAbs, errorBound, mode, k: 0, predictor: PREDICTORS.qfirst };
      ({ body, out } = szEncode(
        f,
        c.kind === "sort" ? { ...p, k: c.k, lehmer: true } : { ...p, linear: c.spec },
      ));
    } else {
      const k = share === "auto"
        ? chooseK(f.x, f, { eb: ebAbs, predictor }).k
        : Math.min(share, Math.max(f.rows, 1));
      ({ body, out } = szEncode(f, { ebAbs, errorBound, mode, k, predictor }));
    }
    const bad = firstBoundViolation(f.x, f.bits, out, f.dtype, ebAbs);
    if (bad >= 0) throw new Error(`codec bug: value ${bad} (${f.x[bad]}) breaks the error bound ${ebAbs}`);
    lossless = opts.lossless === "none" ? "none" : "auto";
  } else if (codec === "fast") {
    const { errorBound, mode } = boundOptions(opts);
    const predictor = fastPredictorOption(opts.fastPredictor ?? "auto");
    body = fastEncode(f, { errorBound, mode, predictor }).body;
    out = t.data; // unused: the fast body carries its own digest
  } else if (codec === "fp16" || codec === "fp16_zstd") {
    if (t.dtype === "bf16") throw new RangeError(`the ${codec} codec takes f32 or f16 tensors`);
    const h = t.dtype === "f16" ? t.data as Uint16Array : castToF16(f.bits as Uint32Array, f.x);
    body = new Uint8Array(h.buffer, h.byteOffset, h.byteLength);
    out = t.data;
    if (codec === "fp16_zstd") [lossless, level] = ["zstd", opts.zstdLevel ?? 3];
  } else if (codec === "raw" || codec === "zstd") {
    out = t.data;
    body = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    if (codec === "zstd") [lossless, level] = ["zstd", opts.zstdLevel ?? 3];
  } else if (codec in KIVI_BITS) {
    const role = opts.role ?? "key";
    if (role !== "key" && role !== "value") throw new RangeError(`bad KIVI role '${role}'`);
    ({ body, out } = kiviEncode(f, KIVI_BITS[codec as keyof typeof KIVI_BITS], role));
  } else throw new RangeError(`unknown codec '${codec}'`);
  const digest = CODEC_TRAITS[codec].digest === "body" ? crc32(body) >>> 0 : digestOf(out);
  const w = writeHeader({ codec, dtype: t.dtype, shape: t.shape, digest }, body.length);
  saveLossless(body, lossless, level, w);
  return w.finish();
}

interface Decoded {
  tensor: Tensor;
  info: StreamInfo;
}

function decodeStream(bytes: Uint8Array, limits: DecodeLimits): Decoded {
  if (!(bytes instanceof Uint8Array)) throw new TypeError("decode() needs a Uint8Array");
  const r = new ByteReader(bytes);
  const h = readHeader(r, limits.maxElements ?? DEFAULT_MAX_ELEMENTS);
  const n = h.shape.reduce((a, b) => a * b, 1);
  const cols = h.shape.length === 0 ? 1 : h.shape[h.shape.length - 1];
  const rows = cols === 0 ? 0 : n / cols;
  const width = DTYPE_BYTES[h.dtype];
  const headerBytes = r.pos;
  const linfo: LosslessInfo = { zstd: false, rawBytes: 0, storedBytes: 0 };
  const maxBody = h.codec === "raw" || h.codec === "zstd"
    ? n * width
    : h.codec === "fp16" || h.codec === "fp16_zstd"
    ? 2 * n
    : 16 * n + 2 ** 20;
  const bodyAt = r.pos;
  const body = loadLossless(r, maxBody, linfo);
  if (r.pos !== bytes.length) r.fail(`${bytes.length - r.pos} stray bytes after the stream`);
  const info: StreamInfo = {
    version: FORMAT_VERSION,
    codec: h.codec,
    dtype: h.dtype,
    shape: h.shape,
    elements: n,
    totalBytes: bytes.length,
    digest: h.digest,
    stages: { header: headerBytes, lossless: linfo.storedBytes },
  };
  let data: Float32Array | Uint16Array;
  const bodyDigest = CODEC_TRAITS[h.codec].digest === "body";
  if (bodyDigest && (crc32(body) >>> 0) !== h.digest) {
    throw new CorruptStreamError("digest of the stream body does not match", bodyAt);
  }
  if (h.codec === "fast") {
    const d = fastDecode(body, h.dtype, rows, cols, bodyAt);
    data = d.out;
    Object.assign(info, {
      eb: d.header.eb,
      mode: d.header.mode,
      errorBound: d.header.errorBound,
      exceptions: d.header.exceptions,
      outliers: d.header.outliers,
      fastPredictor: d.header.predictor,
    });
    Object.assign(info.stages, d.stages);
  } else if (h.codec === "fp16" || h.codec === "fp16_zstd") {
    if (h.dtype === "bf16") r.fail(`${h.codec} stream of a bf16 tensor`, bodyAt);
    if (body.length !== 2 * n) r.fail(`fp16 body of ${body.length} bytes for ${n} values`, bodyAt);
    // widening makes the output; copy the body only when it is not 2-byte aligned for a view
    const aligned = (body.byteOffset & 1) === 0 ? body : body.slice();
    const bits = new Uint16Array(aligned.buffer, aligned.byteOffset, n);
    data = widenF16(bits, h.dtype as "f32" | "f16");
  } else if (h.codec === "raw" || h.codec === "zstd") {
    if (body.length !== n * width) r.fail(`body of ${body.length} bytes for ${n} values`, bodyAt);
    const copy = body.slice();
    data = h.dtype === "f32" ? new Float32Array(copy.buffer) : new Uint16Array(copy.buffer);
  } else if (h.codec === "kvsort" || h.codec === "sz") {
    const { out, info: s } = szDecode(body, h.dtype, rows, cols, bodyAt);
    if (h.codec === "sz" && s.k !== 0) r.fail("sz stream with a sort index", bodyAt);
    data = out;
    Object.assign(info, {
      eb: s.eb,
      mode: s.mode,
      errorBound: s.errorBound,
      k: s.k,
      predictor: s.predictor,
      linear: s.linear,
      exceptions: s.exceptions,
    });
    Object.assign(info.stages, s.stages);
  } else {
    const br = new ByteReader(body);
    const k = kiviDecode(br, h.dtype, rows, cols, KIVI_BITS[h.codec as keyof typeof KIVI_BITS]);
    data = k.out;
    Object.assign(info, { role: k.role, exceptions: k.exceptions });
  }
  if (!bodyDigest && digestOf(data) !== h.digest) {
    throw new CorruptStreamError("digest of the decoded values does not match", 0);
  }
  return { tensor: { dtype: h.dtype, shape: h.shape, data }, info };
}

/**
 * Decodes a stream into a tensor of its original dtype and shape. Any damaged, truncated or
 * hostile input throws `CorruptStreamError` (`StreamLimitError` past `limits`).
 *
 * @example
 * ```ts
 * import { decode, encode } from "./mod.ts";
 * const bytes = encode({ dtype: "f32", shape: [2], data: new Float32Array([1, 2]) }, { codec: "raw" });
 * console.log(decode(bytes).data); // Float32Array [1, 2]
 * ```
 */
export function decode(bytes: Uint8Array, limits: DecodeLimits = {}): Tensor {
  return guard(() => decodeStream(bytes, limits).tensor);
}

/**
 * Describes a stream: codec, dtype, shape, bound, k and per-stage byte counts. It decodes
 * the stream fully, so the same validation applies.
 *
 * @example
 * ```ts
 * import { encode, inspect } from "./mod.ts";
 * const bytes = encode({ dtype: "f16", shape: [1, 4], data: new Uint16Array(4) }, { codec: "zstd" });
 * console.log(inspect(bytes).codec); // "zstd"
 * ```
 */
export function inspect(bytes: Uint8Array, limits: DecodeLimits = {}): StreamInfo {
  return guard(() => decodeStream(bytes, limits).info);
}

/** Decodes and describes in one pass. */
export function decodeWithInfo(bytes: Uint8Array, limits: DecodeLimits = {}): Decoded {
  return guard(() => decodeStream(bytes, limits));
}

function guard<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (
      err instanceof CorruptStreamError ||
      err instanceof TypeError && String(err.message).startsWith("decode()")
    ) {
      throw err;
    }
    // anything else thrown while reading hostile bytes is still a corrupt stream
    throw new CorruptStreamError(`unexpected failure: ${(err as Error)?.message ?? err}`, 0);
  }
}

/** Names of every codec. */
export { CODECS } from "./traits.ts";
