/**
 * Quantize-first predictor (cuSZp / FZ-GPU): each value becomes the integer bin
 * q = round(x / 2eb) on its own, and the symbol codes q − q_prev along the sorted row, so the
 * decoder's reconstruction is a prefix sum followed by one multiply. An exception's bin is
 * recomputed from its exact value on both sides, so the chain never breaks.
 * @module
 */
import type { ByteReader } from "../bytes.ts";
import { scratchI32, scratchU16 } from "../scratch.ts";
import { f16Table32 } from "../../dtype/mod.ts";
import type { Grid } from "../sort/shared_index.ts";
import { type LinearQuantizer, RADIUS } from "../quantize/linear.ts";
import { type BinTable, binTable, exceptionBin, QMAX, storageBits } from "../quantize/bins.ts";
import { roundHalfUp } from "../quantize/round.ts";

/**
 * Encoder: records `v` at `idx` as an exception (its output bits are its input bits) and
 * returns the bin the chain goes on from.
 */
function encodeException(
  q: LinearQuantizer,
  v: number,
  idx: number,
  inBits: Uint16Array | Uint32Array,
  outBits: Uint16Array | Uint32Array,
): number {
  q.exception(v, idx);
  outBits[idx] = inBits[idx];
  return exceptionBin(q.r, q.inv);
}

/**
 * The table of every bin a finite value of `x` can land in, `[round(min/2eb), round(max/2eb)]`
 * within ±QMAX, or undefined when that is more than {@link binTable} builds.
 */
export function frameBins(x: Float32Array, q: LinearQuantizer): BinTable | undefined {
  // NaN fails both compares; only an infinity needs the slower loop that skips it
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo === -Infinity || hi === Infinity) {
    lo = Infinity, hi = -Infinity;
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      if (v - v !== 0) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  if (!(hi >= lo)) return binTable(q.twoEb, q.dtype, 0, 0);
  const a = Math.max(-QMAX, Math.round(lo * q.inv)), b = Math.min(QMAX, Math.round(hi * q.inv));
  return binTable(q.twoEb, q.dtype, a <= b ? a : 0, a <= b ? b : 0);
}

/**
 * {@link qfirstEncode} with the bin table: the same symbols and exceptions, with the output in
 * the tensor's storage bits (`outBits`; an exception gets its input bits from `inBits`).
 * Returns false, having done nothing, when the frame spans too many bins for a table.
 */
export function qfirstEncodeTable(
  x: Float32Array,
  g: Grid,
  q: LinearQuantizer,
  syms: Uint16Array,
  inBits: Uint16Array | Uint32Array,
  outBits: Uint16Array | Uint32Array,
): boolean {
  const tab = frameBins(x, q);
  if (!tab) return false;
  const { rows, cols, k, perms } = g;
  const { inv, eb } = q;
  const { lo, size, value, bits } = tab;
  let first = 0;
  for (let i = 0; i < rows; i++) {
    const base = i * cols;
    const po = k > 0 ? ((i / k) | 0) * cols : -1;
    let qp = first;
    for (let j = 0; j < cols; j++) {
      const idx = base + (po >= 0 ? perms[po + j] : j);
      const v = x[idx];
      // Math.round(v * inv) (a -0 cannot matter: only qd - lo within [0, size) is used)
      const td = roundHalfUp(v * inv) - lo;
      let sym = 0, qv = 0;
      // td in [0, size) implies |qv| <= QMAX, as the table lies within ±QMAX
      if (td >= 0 && td < size) {
        const t = td | 0;
        qv = t + lo;
        const code = qv - qp;
        if (code > -RADIUS && code < RADIUS && Math.abs(value[t] - v) <= eb && (v !== 0 || 1 / v > 0)) {
          sym = code + RADIUS;
          outBits[idx] = bits[t];
        }
      }
      if (sym === 0) qv = encodeException(q, v, idx, inBits, outBits);
      syms[base + j] = sym;
      qp = qv;
      if (j === 0) first = qv;
    }
  }
  return true;
}

/**
 * The reconstruction {@link qfirstEncodeTable} gives as fp32: each value's output bits read in
 * its dtype (the bin table's value), and each exception's stand-in (its value, 0 when not finite).
 */
function qfirstEncodeTableRecon(
  x: Float32Array,
  g: Grid,
  q: LinearQuantizer,
  syms: Uint16Array,
  recon: Float32Array,
): boolean {
  const n = x.length;
  if (q.dtype === "f32") {
    // the output bits are the reconstruction's own; an exception's are set below
    const u = new Uint32Array(recon.buffer, recon.byteOffset, n);
    if (!qfirstEncodeTable(x, g, q, syms, u, u)) return false;
  } else {
    const b = scratchU16("qfirst.recon", n);
    if (!qfirstEncodeTable(x, g, q, syms, b, b)) return false;
    if (q.dtype === "f16") {
      const t = f16Table32();
      for (let i = 0; i < n; i++) recon[i] = t[b[i]];
    } else {
      const u = new Uint32Array(recon.buffer, recon.byteOffset, n);
      for (let i = 0; i < n; i++) u[i] = b[i] << 16;
    }
  }
  for (let e = 0; e < q.excCount; e++) {
    const idx = q.excIdx[e], v = x[idx];
    recon[idx] = Number.isFinite(v) ? v : 0;
  }
  return true;
}

/** Encodes a frame. `recon` (flat, original order) receives the reconstruction. */
export function qfirstEncode(
  x: Float32Array,
  g: Grid,
  q: LinearQuantizer,
  syms: Uint16Array,
  recon: Float32Array,
): void {
  if (qfirstEncodeTableRecon(x, g, q, syms, recon)) return;
  const { rows, cols, k, perms } = g;
  const { inv, twoEb, eb, round } = q;
  let first = 0;
  for (let i = 0; i < rows; i++) {
    const base = i * cols;
    const po = k > 0 ? ((i / k) | 0) * cols : -1;
    let qp = first;
    for (let j = 0; j < cols; j++) {
      const idx = base + (po >= 0 ? perms[po + j] : j);
      const v = x[idx];
      let qv = Math.round(v * inv) + 0; // + 0: never -0, the decoder sums integers
      const code = qv - qp;
      let sym = 0;
      if (code > -RADIUS && code < RADIUS && qv >= -QMAX && qv <= QMAX) {
        const rv = round(qv * twoEb);
        if (Math.abs(rv - v) <= eb && (v !== 0 || 1 / v > 0)) {
          sym = code + RADIUS;
          recon[idx] = rv;
        }
      }
      if (sym === 0) {
        q.exception(v, idx);
        recon[idx] = q.r;
        qv = exceptionBin(q.r, inv);
      }
      syms[base + j] = sym;
      qp = qv;
      if (j === 0) first = qv;
    }
  }
}

/** Decodes what {@link qfirstEncode} produced. */
export function qfirstDecode(
  syms: Uint16Array,
  g: Grid,
  q: LinearQuantizer,
  recon: Float32Array,
  r: ByteReader,
): void {
  const { rows, cols, k, perms } = g;
  const { inv, twoEb, round } = q;
  let first = 0;
  for (let i = 0; i < rows; i++) {
    const base = i * cols;
    const po = k > 0 ? ((i / k) | 0) * cols : -1;
    let qp = first;
    for (let j = 0; j < cols; j++) {
      const idx = base + (po >= 0 ? perms[po + j] : j);
      const s = syms[base + j];
      let qv: number;
      if (s !== 0) {
        qv = qp + s - RADIUS;
        recon[idx] = round(qv * twoEb);
      } else {
        const v = q.recover(0, 0, idx, r);
        recon[idx] = v;
        qv = exceptionBin(v, inv);
      }
      qp = qv;
      if (j === 0) first = qv;
    }
  }
}

/**
 * {@link qfirstDecode} straight to the tensor's storage bits: a first pass sums the bins
 * (checking each stays within ±QMAX, as the encoder guarantees), a second maps them through
 * the bin table (or rounds each one when the span is too wide for a table), then the
 * exceptions take their stored bits. Gives exactly what `qfirstDecode` + `assemble` give.
 */
export function qfirstDecodeBits(
  syms: Uint16Array,
  g: Grid,
  q: LinearQuantizer,
  excBits: Uint16Array | Uint32Array,
  outBits: Uint16Array | Uint32Array,
  r: ByteReader,
): void {
  const { rows, cols, k, perms } = g;
  const n = rows * cols;
  const bins = scratchI32("qfirst.bins", n);
  // bins stay within ±QMAX (checked below), so qp + s - RADIUS is exact in int32 arithmetic;
  // a stream that drifts out of range is caught by lo/hi before any wrap-around matters
  let lo = QMAX, hi = -QMAX, first = 0;
  for (let i = 0; i < rows; i++) {
    const base = i * cols;
    const po = k > 0 ? ((i / k) | 0) * cols : -1;
    let qp = first;
    for (let j = 0; j < cols; j++) {
      const idx = base + (po >= 0 ? perms[po + j] : j);
      const s = syms[base + j];
      let qv = 0;
      if (s !== 0) {
        qv = (qp + s - RADIUS) | 0;
        if (qv < lo) lo = qv;
        if (qv > hi) hi = qv;
      } else qv = exceptionBin(q.recover(0, 0, idx, r), q.inv);
      bins[idx] = qv;
      qp = qv;
      if (j === 0) first = qv;
    }
  }
  if (lo < -QMAX || hi > QMAX) r.fail(`quantization bin ${lo < -QMAX ? lo : hi} out of range`);
  const tab = binTable(q.twoEb, q.dtype, lo, hi);
  if (tab) {
    const { size, bits } = tab;
    for (let i = 0; i < n; i++) {
      const t = bins[i] - lo;
      outBits[i] = t >= 0 && t < size ? bits[t] : 0;
    }
  } else {
    for (let i = 0; i < n; i++) outBits[i] = storageBits(bins[i] * q.twoEb, q.dtype);
  }
  const { excIdx, excCount } = q;
  for (let i = 0; i < excCount && i < excBits.length; i++) outBits[excIdx[i]] = excBits[i];
}
