/**
 * Previous-value predictor along the sorted row; a row's first value is predicted by the
 * first (smallest) reconstructed value of the row before.
 * @module
 */
import type { ByteReader } from "../bytes.ts";
import type { Grid } from "../sort/shared_index.ts";
import type { LinearQuantizer } from "../quantize/linear.ts";

/** Encodes a frame. `recon` (flat, original order) receives the reconstruction. */
export function prevEncode(
  x: Float32Array,
  g: Grid,
  q: LinearQuantizer,
  syms: Uint16Array,
  recon: Float32Array,
): void {
  const { rows, cols, k, perms } = g;
  let first = 0;
  for (let i = 0; i < rows; i++) {
    const base = i * cols;
    const po = k > 0 ? ((i / k) | 0) * cols : -1;
    let pred = first;
    for (let j = 0; j < cols; j++) {
      const idx = base + (po >= 0 ? perms[po + j] : j);
      syms[base + j] = q.quantize(x[idx], pred, idx);
      pred = recon[idx] = q.r;
    }
    if (cols > 0) first = recon[base + (po >= 0 ? perms[po] : 0)];
  }
}

/** Decodes what {@link prevEncode} produced. */
export function prevDecode(
  syms: Uint16Array,
  g: Grid,
  q: LinearQuantizer,
  recon: Float32Array,
  r: ByteReader,
): void {
  const { rows, cols, k, perms } = g;
  let first = 0;
  for (let i = 0; i < rows; i++) {
    const base = i * cols;
    const po = k > 0 ? ((i / k) | 0) * cols : -1;
    let pred = first;
    for (let j = 0; j < cols; j++) {
      const idx = base + (po >= 0 ? perms[po + j] : j);
      pred = recon[idx] = q.recover(syms[base + j], pred, idx, r);
    }
    if (cols > 0) first = recon[base + (po >= 0 ? perms[po] : 0)];
  }
}
