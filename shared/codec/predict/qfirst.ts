/**
 * Quantize-first predictor (cuSZp / FZ-GPU): each value becomes the integer bin
 * q = round(x / 2eb) on its own, and the symbol codes q − q_prev along the sorted row, so the
 * decoder's reconstruction is a prefix sum followed by one multiply. An exception's bin is
 * recomputed from its exact value on both sides, so the chain never breaks.
 * @module
 */
import type { ByteReader } from "../bytes.ts";
import type { Grid } from "../sort/shared_index.ts";
import { type LinearQuantizer, RADIUS } from "../quantize/linear.ts";

const QMAX = 2 ** 30;

/** Encodes a frame. `recon` (flat, original order) receives the reconstruction. */
export function qfirstEncode(
  x: Float32Array,
  g: Grid,
  q: LinearQuantizer,
  syms: Uint16Array,
  recon: Float32Array,
): void {
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
        qv = Math.round(q.r * inv);
        if (!(qv >= -QMAX && qv <= QMAX)) qv = 0;
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
        qv = Math.round(v * inv);
        if (!(qv >= -QMAX && qv <= QMAX)) qv = 0;
      }
      qp = qv;
      if (j === 0) first = qv;
    }
  }
}
