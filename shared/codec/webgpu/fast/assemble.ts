/**
 * The bytes around a fast body that the host writes in place in the read-back buffer: the
 * container header and lossless section prefix before the body (../../codec.ts `encode`:
 * `writeHeader` with the crc32 of the body, then `saveLossless` with mode none) and the body's
 * 44-byte fixed header (../../fast/layout.ts). The GPU leaves room for both.
 * @module
 */
import { crc32 } from "node:zlib";
import { writeHeader } from "../../container.ts";
import { LOSSLESS_TAG } from "../../lossless/zstd.ts";
import { FAST_TAG, type FastHeader, HEADER_BYTES, PREDICTOR_IDS } from "../../fast/layout.ts";

/** Bytes of a LEB128 varint. */
export function varintBytes(v: number): number {
  let n = 1;
  while (v >= 0x80) v = Math.floor(v / 0x80), n++;
  return n;
}

/** Bytes before the body other than its length varint: container header, lossless tag and mode. */
export function prefixBase(shape: number[]): number {
  return writeHeader({ codec: "fast", dtype: "f32", shape, digest: 0 }, 0).pos + 2;
}

/** Bytes before a body of `bodyLen` bytes. */
export const prefixBytes = (shape: number[], bodyLen: number): number =>
  prefixBase(shape) + varintBytes(bodyLen);

/** Writes the fast header at `at` (the body's first byte). */
export function writeFastHeader(out: Uint8Array, at: number, h: FastHeader): void {
  const dv = new DataView(out.buffer, out.byteOffset + at, HEADER_BYTES);
  out.fill(0, at, at + HEADER_BYTES);
  out[at] = FAST_TAG;
  out[at + 1] = PREDICTOR_IDS[h.predictor];
  out[at + 2] = h.mode === "rel" ? 1 : 0;
  dv.setFloat64(4, h.errorBound, true);
  dv.setFloat64(12, h.eb, true);
  dv.setFloat64(20, h.step, true);
  dv.setUint32(28, h.outliers, true);
  out[at + 32] = h.outlierBits;
  dv.setUint32(36, h.exceptions, true);
  dv.setUint32(40, h.payloadWords, true);
}

/**
 * Writes the container header and lossless prefix of the body `out[bodyAt, bodyAt + bodyLen)`
 * (header included) just before it; returns the stream's first byte. `digest`: the body's crc32
 * when the caller has it already.
 */
export function writePrefix(
  out: Uint8Array,
  bodyAt: number,
  bodyLen: number,
  shape: number[],
  digest?: number,
): number {
  const body = out.subarray(bodyAt, bodyAt + bodyLen);
  const w = writeHeader({ codec: "fast", dtype: "f32", shape, digest: digest ?? crc32(body) >>> 0 }, 0);
  w.u8(LOSSLESS_TAG);
  w.u8(0);
  w.varint(bodyLen);
  const start = bodyAt - w.pos;
  out.set(w.buf.subarray(0, w.pos), start);
  return start;
}
