/**
 * Offline calibration of the cross-channel predictor (`coefficients.ts`): for one (role, layer,
 * KV head), ridge least squares of each channel c on the same token's channels j < c, the
 * previous token's channel c and a constant, over the frames of some calibration prompts.
 * The Gram sums are gathered once per slot; each channel then solves its own small system.
 * @module
 */
import type { ChannelPredictor } from "./coefficients.ts";

/** Sums over the calibration tokens that every channel's normal equations read from. */
export class PredictorFit {
  readonly cols: number;
  /** Σ x xᵀ over tokens with a predecessor, `[cols, cols]`. */
  #xx: Float64Array;
  /** Σ x[t][j]·x[t-1][c], `[j, c]`. */
  #xp: Float64Array;
  /** Σ x[t-1][c]². */
  #pp: Float64Array;
  #sx: Float64Array;
  #sp: Float64Array;
  #n = 0;

  constructor(cols: number) {
    this.cols = cols;
    this.#xx = new Float64Array(cols * cols);
    this.#xp = new Float64Array(cols * cols);
    this.#pp = new Float64Array(cols);
    this.#sx = new Float64Array(cols);
    this.#sp = new Float64Array(cols);
  }

  /** Adds a frame `[rows, cols]` (row-major fp32; non-finite values count as 0). */
  add(frame: Float32Array, rows: number): void {
    const C = this.cols;
    if (frame.length !== rows * C) {
      throw new RangeError(`frame of ${frame.length} values is not ${rows}×${C}`);
    }
    const x = Float64Array.from(frame, (v) => Number.isFinite(v) ? v : 0);
    for (let t = 1; t < rows; t++) {
      const r = t * C, p = r - C;
      for (let i = 0; i < C; i++) {
        const xi = x[r + i];
        this.#sx[i] += xi;
        this.#sp[i] += x[p + i];
        this.#pp[i] += x[p + i] * x[p + i];
        const row = i * C;
        for (let j = 0; j <= i; j++) this.#xx[row + j] += xi * x[r + j];
        for (let c = 0; c < C; c++) this.#xp[row + c] += xi * x[p + c];
      }
    }
    this.#n += Math.max(rows - 1, 0);
  }

  /**
   * Solves every channel's ridge problem (`lambda` · tokens added to the diagonal) and returns
   * the coefficients for the slot.
   */
  solve(slot: { role: "key" | "value"; layer: number; head: number }, lambda = 1e-3): ChannelPredictor {
    const C = this.cols, n = Math.max(this.#n, 1);
    const xx = (i: number, j: number) => i >= j ? this.#xx[i * C + j] : this.#xx[j * C + i];
    const w = new Float64Array((C * (C - 1)) / 2), a = new Float64Array(C), b = new Float64Array(C);
    for (let c = 0; c < C; c++) {
      // features: x[j] (j < c), x'[c], 1
      const m = c + 2;
      const G = new Float64Array(m * m), y = new Float64Array(m);
      for (let i = 0; i < c; i++) {
        for (let j = 0; j < c; j++) G[i * m + j] = xx(i, j);
        G[i * m + c] = G[c * m + i] = this.#xp[i * C + c];
        G[i * m + c + 1] = G[(c + 1) * m + i] = this.#sx[i];
        y[i] = xx(c, i);
      }
      G[c * m + c] = this.#pp[c];
      G[c * m + c + 1] = G[(c + 1) * m + c] = this.#sp[c];
      G[(c + 1) * m + c + 1] = n;
      y[c] = this.#xp[c * C + c];
      y[c + 1] = this.#sx[c];
      for (let i = 0; i < m; i++) G[i * m + i] += lambda * n;
      const coef = choleskySolve(G, y, m);
      w.set(coef.subarray(0, c), (c * (c - 1)) / 2);
      a[c] = coef[c];
      b[c] = coef[c + 1];
    }
    return { ...slot, w, a, b };
  }
}

/** Solves G z = y for a symmetric positive definite `m × m` G (overwritten). */
function choleskySolve(G: Float64Array, y: Float64Array, m: number): Float64Array {
  for (let j = 0; j < m; j++) {
    let d = G[j * m + j];
    for (let k = 0; k < j; k++) d -= G[j * m + k] * G[j * m + k];
    if (!(d > 0)) throw new RangeError("calibration system is not positive definite");
    const s = Math.sqrt(d);
    G[j * m + j] = s;
    for (let i = j + 1; i < m; i++) {
      let v = G[i * m + j];
      for (let k = 0; k < j; k++) v -= G[i * m + k] * G[j * m + k];
      G[i * m + j] = v / s;
    }
  }
  const z = Float64Array.from(y);
  for (let i = 0; i < m; i++) {
    let v = z[i];
    for (let k = 0; k < i; k++) v -= G[i * m + k] * z[k];
    z[i] = v / G[i * m + i];
  }
  for (let i = m - 1; i >= 0; i--) {
    let v = z[i];
    for (let k = i + 1; k < m; k++) v -= G[k * m + i] * z[k];
    z[i] = v / G[i * m + i];
  }
  return z;
}
