/**
 * The fast format's stream layout: independently decodable blocks of fixed-length codes, in
 * the class of cuSZp2 and FZ-GPU, so that encode and decode are data-parallel (typed-array
 * loops here, one thread per block on a GPU) and no serial entropy stream sits in the hot path.
 *
 * A frame `[rows, cols]` is cut into row groups of {@link BLOCK} tokens; block `(g, c)` holds
 * the {@link BLOCK} (fewer in the last group) values of channel `c` in group `g`, so a block
 * runs along the token axis, where KV channels keep their scale. Each value is prequantized,
 * `q = round(x / step)` with `step <= 2·eb`, so every value is within the bound whatever its
 * neighbours are (all in fp32 arithmetic: `y = f32(x · f32(1/step))`, `q = roundEven(y)`,
 * `x' = f32(q · step)`, so a GPU kernel gives the same codes); the predictor (`none`: `q`; `delta`: `q - q_prev` within the block, the
 * first against 0) gives residuals that are zigzagged and packed at the block's width (the
 * bits of its largest code). One large code per block may be stored apart as an outlier, so
 * one spike does not widen 31 others. Values the quantizer cannot hold (non-finite, huge, or
 * off the bound after rounding to the output dtype) are exceptions, stored exactly.
 *
 * Body (little-endian; each section starts 4-byte aligned relative to the body):
 * ```
 *  0  tag u8 'F' | predictor u8 (0 none, 1 delta) | mode u8 (0 abs, 1 rel) | 0 u8
 *  4  errorBound f64 (as asked) | eb f64 (absolute bound kept) | step f64
 * 28  outliers u32 | outlierBits u8 | 0 u8 ×3 | exceptions u32 | payloadWords u32
 * 44  widths: one byte per block, block order (g, c): bits 0-5 width, bit 6 outlier; pad to 4
 *     outliers: bit stream, per outlier in block order 5 bits slot + outlierBits bits code
 *     payload: payloadWords u32; block b has ceil(len·width / 32) words, codes LSB first
 *     exceptions: u32 index each (ascending), then the raw bits (u32 for f32, u16 otherwise),
 *     padded to 4
 * ```
 * @module
 */

/** Tokens per block (and per row group). */
export const BLOCK = 32;
export const FAST_TAG = 0x46; // 'F'
export const HEADER_BYTES = 44;
/**
 * Quantized values stay below this magnitude: `q · step` is then exact before its one fp32
 * rounding, and residuals and zigzag codes fit in 31 bits.
 */
export const Q_LIMIT = 2 ** 23;
/** Largest code width a block may declare. */
export const MAX_WIDTH = 31;
export const OUTLIER_FLAG = 0x40;
export const WIDTH_MASK = 0x3f;
/** Bits of an outlier's slot number. */
export const SLOT_BITS = 5;

export type FastPredictor = "none" | "delta";
export const PREDICTOR_IDS: Readonly<Record<FastPredictor, number>> = { none: 0, delta: 1 };

/** The fields of a fast body's fixed header. */
export interface FastHeader {
  predictor: FastPredictor;
  mode: "abs" | "rel";
  errorBound: number;
  eb: number;
  step: number;
  outliers: number;
  outlierBits: number;
  exceptions: number;
  payloadWords: number;
}

export const align4 = (n: number): number => (n + 3) & ~3;

/** Row groups and blocks of a frame. */
export function blockCount(rows: number, cols: number): { groups: number; blocks: number } {
  const groups = Math.ceil(rows / BLOCK);
  return { groups, blocks: groups * cols };
}

/** Words of packed codes for `len` values of `width` bits. */
export const blockWords = (len: number, width: number): number => (len * width + 31) >>> 5;

/** Bits needed for a non-negative 31-bit code. */
export const bitWidth = (v: number): number => 32 - Math.clz32(v);

/** Byte offsets of a body's sections and its size, from the counts its header holds. */
export interface BodyLayout {
  widthsAt: number;
  outliersAt: number;
  outlierWords: number;
  payloadAt: number;
  excAt: number;
  total: number;
}

/** Where each section of a body starts (`valueBytes`: 4 for f32 exceptions, 2 otherwise). */
export function bodyLayout(
  blocks: number,
  outliers: number,
  outlierBits: number,
  payloadWords: number,
  exceptions: number,
  valueBytes: number,
): BodyLayout {
  const widthsAt = HEADER_BYTES;
  const outliersAt = widthsAt + align4(blocks);
  const outlierWords = Math.ceil((outliers * (SLOT_BITS + outlierBits)) / 32);
  const payloadAt = outliersAt + 4 * outlierWords;
  const excAt = payloadAt + 4 * payloadWords;
  const total = excAt + 4 * exceptions + align4(exceptions * valueBytes);
  return { widthsAt, outliersAt, outlierWords, payloadAt, excAt, total };
}
