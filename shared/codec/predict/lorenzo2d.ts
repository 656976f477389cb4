/**
 * 2-D Lorenzo predictor over (token, sorted position): left + up − up-left, where "up" is
 * the previous token's reconstruction at the same channel. Because it indexes the previous
 * row by channel, it stays aligned across groups with different permutations.
 * @module
 */
import type { ByteReader } from "../bytes.ts";
import type { Grid } from "../sort/shared_index.ts";
import type { LinearQuantizer } from "../quantize/linear.ts";

/** Encodes a frame. `recon` (flat, original order) receives the reconstruction. */
export function lorenzo2dEncode(
  x: Float32Array,
  g: Grid,
  q: LinearQuantizer,
  syms: Uint16Array,
  recon: Float32Array,
): void {
  const { rows, cols, k, perms } = g;
  for (let i = 0; i < rows; i++) {
    const base = i * cols;
    const po = k > 0 ? ((i / k) | 0) * cols : -1;
    let left = 0, upLeft = 0;
    for (let j = 0; j < cols; j++) {
      const idx = base + (po >= 0 ? perms[po + j] : j);
      const up = i > 0 ? recon[idx - cols] : 0;
      const pred = j > 0 ? left + up - upLeft : up;
      syms[base + j] = q.quantize(x[idx], pred, idx);
      left = recon[idx] = q.r;
      upLeft = up;
    }
  }
}

/** Decodes what {@link lorenzo2dEncode} produced. */
export function lorenzo2dDecode(
  syms: Uint16Array,
  g: Grid,
  q: LinearQuantizer,
  recon: Float32Array,
  r: ByteReader,
): void {
  const { rows, cols, k, perms } = g;
  for (let i = 0; i < rows; i++) {
    const base = i * cols;
    const po = k > 0 ? ((i / k) | 0) * cols : -1;
    let left = 0, upLeft = 0;
    for (let j = 0; j < cols; j++) {
      const idx = base + (po >= 0 ? perms[po + j] : j);
      const up = i > 0 ? recon[idx - cols] : 0;
      const pred = j > 0 ? left + up - upLeft : up;
      left = recon[idx] = q.recover(syms[base + j], pred, idx, r);
      upLeft = up;
    }
  }
}
