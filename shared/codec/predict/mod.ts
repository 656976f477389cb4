/**
 * Predict stage. A predictor walks the frame row by row in sorted order (the grid's
 * permutations), asks the quantizer to code each value against its prediction and keeps
 * the reconstruction for the next prediction; the decoder walks the same path. Symbols are
 * laid out row-major in sorted order. Implementations:
 * - `prev`: the previous reconstructed value along the sorted row (1-D Lorenzo);
 * - `lorenzo2d`: left + up − up-left, "up" being the previous token at the same channel;
 * - `qfirst`: quantize first, then predict the integer bin from the previous one
 *   (cuSZp / FZ-GPU style), so reconstruction is a prefix sum of integers;
 * - `linear` (id 4, `linear.ts`): token-axis or calibrated cross-channel prediction on the
 *   bins of an unsorted frame; it carries its own metadata and is driven by the composer.
 *
 * Each grid predictor writes the walk out in its own encode and decode loops, on purpose: one
 * shared walker calling back per value measured 10–46% slower on a [2048, 64] frame (qfirst's
 * table encoder worst), and one loop for both sides with an encode/decode switch 3–25% slower.
 * @module
 */
import type { ByteReader, ByteWriter } from "../bytes.ts";
import type { Grid } from "../sort/shared_index.ts";
import type { LinearQuantizer } from "../quantize/linear.ts";
import { prevDecode, prevEncode } from "./prev.ts";
import { lorenzo2dDecode, lorenzo2dEncode } from "./lorenzo2d.ts";
import { qfirstDecode, qfirstEncode } from "./qfirst.ts";

/** Stage tag written before the predictor id. */
export const PREDICT_TAG = 0x50; // 'P'

/** Names of the predictors that walk a (sorted) grid. */
export type GridPredictorName = "prev" | "lorenzo2d" | "qfirst";
/** Names of every predict stage a stream can hold. */
export type PredictorName = GridPredictorName | "linear";

/** One predictor: codes a frame into symbols, and rebuilds it from them. */
export interface Predictor {
  id: number;
  name: PredictorName;
  encode(x: Float32Array, g: Grid, q: LinearQuantizer, syms: Uint16Array, recon: Float32Array): void;
  decode(syms: Uint16Array, g: Grid, q: LinearQuantizer, recon: Float32Array, r: ByteReader): void;
}

/** Every predictor, by name. */
export const PREDICTORS: Readonly<Record<GridPredictorName, Predictor>> = {
  prev: { id: 1, name: "prev", encode: prevEncode, decode: prevDecode },
  lorenzo2d: { id: 2, name: "lorenzo2d", encode: lorenzo2dEncode, decode: lorenzo2dDecode },
  qfirst: { id: 3, name: "qfirst", encode: qfirstEncode, decode: qfirstDecode },
};

/**
 * The linear predictors' stage (`linear.ts`): listed so that its id reads back, but it does not
 * walk a grid, so its grid methods refuse (the composer calls `linearEncode`/`linearDecode`).
 */
export const LINEAR_PREDICTOR: Predictor = {
  id: 4,
  name: "linear",
  encode: () => {
    throw new Error("the linear predictor is driven by the composer, not through a grid");
  },
  decode: (_s, _g, _q, _r, r) => r.fail("the linear predictor is driven by the composer"),
};

/** Writes the predictor's id. */
export function savePredictor(p: Predictor, w: ByteWriter): void {
  w.u8(PREDICT_TAG);
  w.u8(p.id);
}

/** Reads a predictor id and returns the predictor. */
export function loadPredictor(r: ByteReader): Predictor {
  r.tag(PREDICT_TAG, "predict");
  const at = r.pos;
  const id = r.u8("predictor id");
  const p = [...Object.values(PREDICTORS), LINEAR_PREDICTOR].find((p) => p.id === id);
  return p ?? r.fail(`unknown predictor id ${id}`, at);
}
