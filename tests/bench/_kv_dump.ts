/**
 * KV dumps (`kvrelay dump-kv`'s X.k.npy / X.v.npy and the KV samples, each `[L, T, H, D]`) as
 * the per-(layer, KV head) frames the hand-off encodes.
 * @module
 */
import { readNpy } from "../../shared/npy/mod.ts";

/** One (layer, KV head) of a dump: `data` is `[rows, cols]` = `[T, D]`, fp32. */
export interface HeadFrame {
  layer: number;
  head: number;
  rows: number;
  cols: number;
  data: Float32Array;
}

/** The frames of a `[L, T, H, D]` K or V file, layer by layer, head by head. */
export function headFrames(path: string): HeadFrame[] {
  const t = readNpy(Deno.readFileSync(path));
  const [L, P, H, D] = t.shape, x = t.data as Float32Array;
  const out: HeadFrame[] = [];
  for (let l = 0; l < L; l++) {
    for (let h = 0; h < H; h++) {
      const f = new Float32Array(P * D);
      for (let p = 0; p < P; p++) {
        f.set(x.subarray(((l * P + p) * H + h) * D, ((l * P + p) * H + h + 1) * D), p * D);
      }
      out.push({ layer: l, head: h, rows: P, cols: D, data: f });
    }
  }
  return out;
}
