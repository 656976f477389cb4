/**
 * The fast format's decoder (layout: ./layout.ts). Every count and width is checked against
 * the body before a value is written, so hostile bytes end in `CorruptStreamError`, never in
 * an out-of-range read; the block offsets are a prefix sum over the widths.
 * @module
 */
import type { Dtype } from "../../dtype/mod.ts";
import { f32ToBf16Bits, f32ToF16Bits } from "../../dtype/mod.ts";
import { CorruptStreamError } from "../errors.ts";
import { scratchI32, scratchI8, scratchU8 } from "../scratch.ts";
import { decodeGroupQ } from "./kernels.ts";
import { fastKernels } from "./wasm/mod.ts";
import {
  align4,
  BLOCK,
  blockCount,
  blockWords,
  FAST_TAG,
  type FastHeader,
  type FastPredictor,
  HEADER_BYTES,
  MAX_WIDTH,
  OUTLIER_FLAG,
  SLOT_BITS,
  WIDTH_MASK,
} from "./layout.ts";

export interface FastDecoded {
  out: Float32Array | Uint16Array;
  header: FastHeader;
  stages: Record<string, number>;
  /** Which loops decoded it. */
  kernels: "js" | "wasm";
}

/** Reads fields of up to 31 bits from a word array, LSB first. */
class BitTaker {
  #bit = 0;
  constructor(readonly words: Int32Array, readonly start: number, readonly count: number) {}
  take(w: number, at: number): number {
    if (w === 0) return 0;
    if (this.#bit + w > this.count * 32) throw new CorruptStreamError("outlier section overrun", at);
    // a division, not `>>> 5`: a frame's outlier section may pass 2^32 bits (36 an outlier)
    const i = this.start + Math.floor(this.#bit / 32), sh = this.#bit & 31;
    let v = this.words[i] >>> sh;
    if (sh + w > 32) v |= this.words[i + 1] << (32 - sh);
    this.#bit += w;
    return v & ((1 << w) - 1);
  }
}

function readHeader(body: Uint8Array, at: number): FastHeader {
  const fail = (m: string, off = 0): never => {
    throw new CorruptStreamError(m, at + off);
  };
  if (body.length < HEADER_BYTES) fail(`fast body of ${body.length} bytes is shorter than its header`);
  if (body[0] !== FAST_TAG) fail(`expected fast stage tag ${FAST_TAG}, found ${body[0]}`);
  if (body[1] > 1) fail(`unknown fast predictor ${body[1]}`, 1);
  if (body[2] > 1) fail(`unknown error-bound mode ${body[2]}`, 2);
  const dv = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const h: FastHeader = {
    predictor: (body[1] === 1 ? "delta" : "none") as FastPredictor,
    mode: body[2] === 1 ? "rel" : "abs",
    errorBound: dv.getFloat64(4, true),
    eb: dv.getFloat64(12, true),
    step: dv.getFloat64(20, true),
    outliers: dv.getUint32(28, true),
    outlierBits: body[32],
    exceptions: dv.getUint32(36, true),
    payloadWords: dv.getUint32(40, true),
  };
  if (!(h.step > 0) || !Number.isFinite(h.step) || Math.fround(h.step) !== h.step) {
    fail(`bad quantization step ${h.step}`, 20);
  }
  if (!(h.eb >= 0) || !Number.isFinite(h.eb)) fail(`bad error bound ${h.eb}`, 12);
  if (h.outlierBits > MAX_WIDTH) fail(`outlier width ${h.outlierBits} over ${MAX_WIDTH}`, 32);
  return h;
}

/**
 * Decodes a fast body into `rows × cols` values of `dtype`; `at` is the body's stream offset.
 * `kernels` as {@link FastParams.kernels}: fp32 outputs take the WebAssembly kernels where
 * available; both give the same values and the same errors.
 */
export function fastDecode(
  body: Uint8Array,
  dtype: Dtype,
  rows: number,
  cols: number,
  at: number,
  kernels: "auto" | "js" = "auto",
): FastDecoded {
  const h = readHeader(body, at);
  const n = rows * cols;
  const { groups, blocks } = blockCount(rows, cols);
  const lastLen = rows - (groups - 1) * BLOCK;
  const valueBytes = dtype === "f32" ? 4 : 2;
  if (h.exceptions > n) throw new CorruptStreamError(`${h.exceptions} exceptions for ${n} values`, at + 36);
  // every section's size is known from the header and the widths: check them against the body
  const widthsAt = HEADER_BYTES;
  const outliersAt = widthsAt + align4(blocks);
  if (outliersAt > body.length) throw new CorruptStreamError("fast body ends inside the widths", at);
  const k = dtype === "f32" && n > 0 && kernels !== "js" ? fastKernels() : null;
  let wasm = k?.loadBody(body, rows, cols) ? k : null;
  const widths = body.subarray(widthsAt, widthsAt + blocks);
  let flagged = 0, words = 0;
  if (wasm) {
    const c = wasm.checkWidths(widthsAt);
    if (c.bad >= 0) {
      throw new CorruptStreamError(
        `block ${c.bad} declares width byte ${widths[c.bad]}`,
        at + widthsAt + c.bad,
      );
    }
    flagged = c.flagged, words = c.words;
  } else {
    for (let b = 0; b < blocks; b++) {
      const wb = widths[b], w = wb & WIDTH_MASK;
      if ((wb & ~(WIDTH_MASK | OUTLIER_FLAG)) !== 0 || w > MAX_WIDTH) {
        throw new CorruptStreamError(`block ${b} declares width byte ${wb}`, at + widthsAt + b);
      }
      if (wb & OUTLIER_FLAG) flagged++;
      words += blockWords(b >= blocks - cols ? lastLen : BLOCK, w);
    }
  }
  if (flagged !== h.outliers) {
    throw new CorruptStreamError(`${flagged} blocks flag an outlier, header says ${h.outliers}`, at + 28);
  }
  if (words !== h.payloadWords) {
    throw new CorruptStreamError(
      `widths need ${words} payload words, header says ${h.payloadWords}`,
      at + 40,
    );
  }
  const outlierWords = Math.ceil((h.outliers * (SLOT_BITS + h.outlierBits)) / 32);
  const payloadAt = outliersAt + 4 * outlierWords;
  const excAt = payloadAt + 4 * words;
  const total = excAt + 4 * h.exceptions + align4(h.exceptions * valueBytes);
  if (total !== body.length) {
    throw new CorruptStreamError(`fast body has ${body.length} bytes, its sections ${total}`, at);
  }
  const stages = {
    widths: outliersAt - widthsAt,
    outliers: 4 * outlierWords,
    payload: 4 * words,
    exceptions: total - excAt,
  };
  if (wasm && !wasm.prepareDecode()) wasm = null; // the values do not fit: the JS loops
  if (wasm) {
    const o = wasm.readOutliers(widthsAt, outliersAt, outlierWords, h.outlierBits);
    if (o.error === 1) throw new CorruptStreamError("outlier section overrun", at + outliersAt);
    if (o.error === 2) {
      throw new CorruptStreamError(`outlier slot ${o.slot} of a ${o.len}-value block`, at + outliersAt);
    }
    const out = wasm.decode(widthsAt, payloadAt, h.predictor === "delta", h.step, h.outlierBits);
    if (h.exceptions > 0) {
      const idx = wasm.bodyWords(excAt, h.exceptions);
      checkExceptions(idx, n, at + excAt);
      const bits = new Uint32Array(out.buffer), vals = wasm.bodyWords(excAt + 4 * h.exceptions, h.exceptions);
      for (let k = 0; k < idx.length; k++) bits[idx[k]] = vals[k];
    }
    return { out, header: h, stages, kernels: "wasm" };
  }
  // word views need 4-byte alignment: copy a misaligned body once (compressed size, cheap)
  let src = body;
  if (body.byteOffset & 3) {
    src = scratchU8("fast.body", body.length);
    src.set(body);
  }
  // int32 words keep every code a small integer for the JIT (widths are at most 31 bits)
  const w32 = new Int32Array(src.buffer, src.byteOffset, total >>> 2);
  const apart = new BitTaker(w32, outliersAt >>> 2, outlierWords);

  // outliers first, so the group loops read them as plain arrays
  const slot = scratchI8("fast.slot", blocks).fill(-1);
  const big = scratchI32("fast.big", blocks);
  for (let b = 0; b < blocks; b++) {
    if (!(widths[b] & OUTLIER_FLAG)) continue;
    const s = apart.take(SLOT_BITS, at + outliersAt);
    big[b] = apart.take(h.outlierBits, at + outliersAt);
    const len = b >= blocks - cols ? lastLen : BLOCK;
    if (s >= len) throw new CorruptStreamError(`outlier slot ${s} of a ${len}-value block`, at + outliersAt);
    slot[b] = s;
  }

  const f32 = dtype === "f32";
  const out = f32 ? new Float32Array(n) : new Uint16Array(n);
  const q32 = scratchI32("fast.q", n);
  const delta = h.predictor === "delta";
  let o = payloadAt >>> 2;
  for (let g = 0; g < groups; g++) {
    const r0 = g * BLOCK, len = Math.min(BLOCK, rows - r0);
    o = decodeGroupQ(w32, o, widths, slot, big, g * cols, r0, len, cols, delta, q32);
  }
  // q · step in fp32 (the format's reconstruction), rounded once more for fp16/bf16 outputs
  if (f32) {
    const outF = out as Float32Array;
    for (let i = 0; i < n; i++) outF[i] = q32[i] * h.step;
  } else {
    const toBits = dtype === "f16" ? f32ToF16Bits : f32ToBf16Bits;
    for (let i = 0; i < n; i++) out[i] = toBits(q32[i] * h.step);
  }

  if (h.exceptions > 0) {
    const idx = new Uint32Array(src.buffer, src.byteOffset + excAt, h.exceptions);
    checkExceptions(idx, n, at + excAt);
    if (f32) {
      const bits = new Uint32Array(out.buffer);
      const vals = new Uint32Array(src.buffer, src.byteOffset + excAt + 4 * h.exceptions, h.exceptions);
      for (let k = 0; k < idx.length; k++) bits[idx[k]] = vals[k];
    } else {
      const vals = new Uint16Array(src.buffer, src.byteOffset + excAt + 4 * h.exceptions, h.exceptions);
      for (let k = 0; k < idx.length; k++) out[idx[k]] = vals[k];
    }
  }
  return { out, header: h, stages, kernels: "js" };
}

/** Exception indices must ascend and stay below `n`. */
function checkExceptions(idx: Uint32Array, n: number, at: number): void {
  let last = -1;
  for (const i of idx) {
    if (i <= last || i >= n) throw new CorruptStreamError(`exception index ${i} out of order or range`, at);
    last = i;
  }
}
