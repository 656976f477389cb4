/**
 * Linear predictors on quantization bins, for frames whose channel order is not stable enough
 * for a shared sort. Each value first becomes its bin q = round(x / 2eb) (quantize first, as
 * `qfirst`), and the symbol codes q minus a prediction made only from bins already decoded, so
 * the decoder repeats it exactly (closed loop: the bound is the quantizer's, pointwise).
 * - `token`: the previous token's bin of the same channel (a column-wise predictor: the frame
 *   read along the token axis);
 * - `cross`: Σ_{j<c} W[c][j]·q[t][j] + A[c]·q[t-1][c] + B[c]/2eb with the calibrated
 *   coefficients of the frame's (role, layer, KV head), rounded to a bin.
 * The sums run in float64 in one fixed order on both sides, so they agree bit for bit.
 *
 * Metadata (after the predict tag and id 4): kind u8 (1 token, 2 cross); for cross the
 * coefficient set's 8-byte hash, role u8, layer varint, head varint.
 * @module
 */
import type { ByteReader, ByteWriter } from "../bytes.ts";
import { scratchI32 } from "../scratch.ts";
import { type LinearQuantizer, RADIUS } from "../quantize/linear.ts";
import { type BinTable, binTable, exceptionBin, QMAX, storageBits } from "../quantize/bins.ts";
import { roundHalfUp } from "../quantize/round.ts";
import {
  type ChannelPredictor,
  type CoefficientSet,
  coefficientSetByHash,
  findPredictor,
} from "./coefficients.ts";
import { UnknownCoefficientsError } from "../errors.ts";

/** Which linear predictor a frame uses. */
export type LinearSpec =
  | { kind: "token" }
  | { kind: "cross"; set: CoefficientSet; p: ChannelPredictor };

/** Writes the spec (the caller has written the predict tag and id). */
export function saveLinearSpec(s: LinearSpec, w: ByteWriter): void {
  w.u8(s.kind === "token" ? 1 : 2);
  if (s.kind === "token") return;
  for (let i = 0; i < 8; i++) w.u8(parseInt(s.set.hash.slice(2 * i, 2 * i + 2), 16));
  w.u8(s.p.role === "key" ? 0 : 1);
  w.varint(s.p.layer);
  w.varint(s.p.head);
}

/**
 * Reads a spec; a cross spec whose coefficient set is not registered, or lacks the slot, is an
 * `UnknownCoefficientsError`.
 */
export function loadLinearSpec(r: ByteReader, cols: number): LinearSpec {
  const at = r.pos;
  const kind = r.u8("linear predictor kind");
  if (kind === 1) return { kind: "token" };
  if (kind !== 2) return r.fail(`unknown linear predictor kind ${kind}`, at);
  const hash = Array.from(r.bytes(8, "coefficient set hash"), (b) => b.toString(16).padStart(2, "0")).join(
    "",
  );
  const role = r.u8("role");
  if (role > 1) r.fail(`unknown role ${role}`, r.pos - 1);
  const layer = r.varint("layer", 0xffff), head = r.varint("head", 0xffff);
  const set = coefficientSetByHash(hash);
  if (!set) {
    throw new UnknownCoefficientsError(
      `the stream's cross-channel predictor uses coefficient set ${hash}, which this process does not hold ` +
        `(load the model the stream was made with)`,
      at,
    );
  }
  const p = findPredictor(set, role === 0 ? "key" : "value", layer, head);
  if (!p || set.cols !== cols) {
    throw new UnknownCoefficientsError(
      `coefficient set ${hash} has no ${
        role === 0 ? "key" : "value"
      } predictor for layer ${layer} head ${head} ` +
        `of ${cols} channels`,
      at,
    );
  }
  return { kind: "cross", set, p };
}

/**
 * The running state of a prediction pass: the current and previous token's bins as float64
 * (the sums read them), and the cross coefficients flattened for the inner loop.
 */
class Rows {
  cur: Float64Array;
  prev: Float64Array;
  readonly cross: boolean;
  readonly w: Float64Array;
  readonly a: Float64Array;
  readonly bInv: Float64Array;
  constructor(s: LinearSpec, cols: number, inv: number) {
    this.cur = new Float64Array(cols);
    this.prev = new Float64Array(cols);
    this.cross = s.kind === "cross";
    this.w = s.kind === "cross" ? s.p.w : new Float64Array(0);
    this.a = s.kind === "cross" ? s.p.a : new Float64Array(0);
    this.bInv = binOffsets(s, cols, inv);
  }

  /** The predicted bin of channel c of token t (t > 0 reads the previous token). */
  predict(t: number, c: number): number {
    if (!this.cross) return t > 0 ? this.prev[c] : 0;
    const { w, cur } = this;
    let sum = this.bInv[c];
    const wo = (c * (c - 1)) / 2;
    for (let j = 0; j < c; j++) sum += w[wo + j] * cur[j];
    if (t > 0) sum += this.a[c] * this.prev[c];
    // a prediction far outside the bins only makes the value an exception; keep it an int32
    return sum > QMAX ? QMAX : sum < -QMAX ? -QMAX : roundHalfUp(sum) | 0;
  }

  /** Moves on to the next token. */
  next(): void {
    [this.cur, this.prev] = [this.prev, this.cur];
  }
}

/** B[c] / 2eb: the constant term in bins. */
function binOffsets(s: LinearSpec, cols: number, inv: number): Float64Array {
  const out = new Float64Array(cols);
  if (s.kind === "cross") { for (let c = 0; c < cols; c++) out[c] = s.p.b[c] * inv; }
  return out;
}

/**
 * Encodes a `rows` × `cols` frame (row-major, original order) with the bin table `tab` of the
 * frame: symbols into `syms`, output storage bits into `outBits`, exceptions recorded in `q`
 * (their bits taken from `inBits`).
 */
export function linearEncode(
  x: Float32Array,
  shape: { rows: number; cols: number },
  s: LinearSpec,
  q: LinearQuantizer,
  tab: BinTable,
  out: { syms: Uint16Array; inBits: Uint16Array | Uint32Array; outBits: Uint16Array | Uint32Array },
): void {
  const { rows, cols } = shape;
  const { syms, inBits, outBits } = out;
  const { inv, eb } = q;
  const { lo, size, value, bits } = tab;
  const st = new Rows(s, cols, inv);
  for (let t = 0; t < rows; t++) {
    for (let c = 0; c < cols; c++) {
      const idx = t * cols + c;
      const pred = st.predict(t, c);
      const v = x[idx];
      const td = roundHalfUp(v * inv) - lo;
      let sym = 0, qv = 0;
      if (td >= 0 && td < size) {
        const k = td | 0;
        qv = k + lo;
        const code = qv - pred;
        if (code > -RADIUS && code < RADIUS && Math.abs(value[k] - v) <= eb && (v !== 0 || 1 / v > 0)) {
          sym = code + RADIUS;
          outBits[idx] = bits[k];
        }
      }
      if (sym === 0) {
        q.exception(v, idx);
        outBits[idx] = inBits[idx];
        qv = exceptionBin(q.r, inv);
      }
      st.cur[c] = qv;
      syms[idx] = sym;
    }
    st.next();
  }
}

/**
 * Decodes what {@link linearEncode} produced into storage bits; exceptions take `excBits`.
 * Fails (typed) when a symbol leads outside the bins the encoder can produce.
 */
export function linearDecode(
  syms: Uint16Array,
  shape: { rows: number; cols: number },
  s: LinearSpec,
  q: LinearQuantizer,
  excBits: Uint16Array | Uint32Array,
  outBits: Uint16Array | Uint32Array,
  r: ByteReader,
): void {
  const { rows, cols } = shape;
  const n = rows * cols;
  const bins = scratchI32("linear.bins", n);
  const inv = q.inv;
  const st = new Rows(s, cols, inv);
  let lo = QMAX, hi = -QMAX;
  for (let t = 0; t < rows; t++) {
    for (let c = 0; c < cols; c++) {
      const idx = t * cols + c;
      const pred = st.predict(t, c);
      const sym = syms[idx];
      let qv: number;
      if (sym !== 0) {
        qv = pred + sym - RADIUS;
        if (qv < -QMAX || qv > QMAX) r.fail(`quantization bin ${qv} out of range`);
        if (qv < lo) lo = qv;
        if (qv > hi) hi = qv;
      } else qv = exceptionBin(q.recover(0, 0, idx, r), inv);
      bins[idx] = qv;
      st.cur[c] = qv;
    }
    st.next();
  }
  const tab = hi >= lo ? binTable(q.twoEb, q.dtype, lo, hi) : undefined;
  if (tab) {
    for (let i = 0; i < n; i++) {
      const k = bins[i] - lo;
      outBits[i] = k >= 0 && k < tab.size ? tab.bits[k] : 0;
    }
  } else {
    for (let i = 0; i < n; i++) outBits[i] = storageBits(bins[i] * q.twoEb, q.dtype);
  }
  const { excIdx, excCount } = q;
  for (let i = 0; i < excCount && i < excBits.length; i++) outBits[excIdx[i]] = excBits[i];
}
