/**
 * The one shape every KV statistic reads: a frame of one layer, one KV head and K or V, as
 * `[rows, cols]` = `[tokens, channels]` fp32 (what `headFrames` cuts and the hand-off encodes),
 * and the per-channel mean magnitudes that several statistics start from.
 * @module
 */

/** `data` is `[rows, cols]` row-major: token t's channel c is `data[t * cols + c]`. */
export interface TokenChannels {
  rows: number;
  cols: number;
  data: Float32Array;
}

/** `RangeError` unless the shape fits the data and every value is finite (ranks of NaN mean nothing). */
export function checkFrame(f: TokenChannels, what = "frame"): void {
  if (!(f.rows >= 0 && f.cols >= 1 && f.rows * f.cols === f.data.length)) {
    throw new RangeError(`${what}: shape [${f.rows}, ${f.cols}] does not fit ${f.data.length} values`);
  }
  const bad = f.data.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) {
    throw new RangeError(
      `${what}: non-finite value at token ${Math.floor(bad / f.cols)}, channel ${bad % f.cols}`,
    );
  }
}

/** Mean |x[t, c]| over tokens `from` ≤ t < `to`, per channel c: `[cols]`. */
export function channelMeanAbs(f: TokenChannels, from = 0, to = f.rows): Float64Array {
  const m = new Float64Array(f.cols);
  for (let t = from; t < to; t++) {
    for (let c = 0; c < f.cols; c++) m[c] += Math.abs(f.data[t * f.cols + c]);
  }
  const n = Math.max(1, to - from);
  for (let c = 0; c < f.cols; c++) m[c] /= n;
  return m;
}

/** K or V. */
export type KvKind = "K" | "V";

/** A frame and where it sits in the cache: which sample (prompt or file), K or V, layer and KV head. */
export interface KvFrame extends TokenChannels {
  kind: KvKind;
  sample: string;
  layer: number;
  head: number;
}
