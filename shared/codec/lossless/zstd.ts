/**
 * Lossless stage: zstd from `node:zlib` over the stage bytes, kept only when it is smaller
 * (`mode: "auto"`). Decoding caps the output at the length the stream declares, which the
 * container has already checked against the caller's limits.
 * @module
 */
import { zstdCompressSync, zstdDecompressSync } from "node:zlib";
import type { ByteReader, ByteWriter } from "../bytes.ts";

/** Stage tag written before the lossless section. */
export const LOSSLESS_TAG = 0x4c; // 'L'

/** `none`: store; `zstd`: always compress; `auto`: compress when that is smaller. */
export type LosslessMode = "none" | "zstd" | "auto";

/** Writes `body`, compressed or not, with its lengths. */
export function saveLossless(body: Uint8Array, mode: LosslessMode, level: number, w: ByteWriter): void {
  w.u8(LOSSLESS_TAG);
  let packed: Uint8Array | undefined;
  if (mode !== "none" && body.length > 0) {
    const z = zstdCompressSync(body, { params: { 100: level } }); // ZSTD_c_compressionLevel
    if (mode === "zstd" || z.length < body.length) packed = new Uint8Array(z.buffer, z.byteOffset, z.length);
  }
  w.u8(packed ? 1 : 0);
  w.varint(body.length);
  if (packed) {
    w.varint(packed.length);
    w.bytes(packed);
  } else w.bytes(body);
}

/** What the lossless section held. */
export interface LosslessInfo {
  zstd: boolean;
  rawBytes: number;
  storedBytes: number;
}

/** Reads the lossless section; `maxRaw` bounds the declared uncompressed length. */
export function loadLossless(r: ByteReader, maxRaw: number, info?: LosslessInfo): Uint8Array {
  r.tag(LOSSLESS_TAG, "lossless");
  const at = r.pos;
  const mode = r.u8("lossless mode");
  if (mode > 1) r.fail(`unknown lossless mode ${mode}`, at);
  const rawLen = r.varint("body length", maxRaw);
  if (mode === 0) {
    if (info) Object.assign(info, { zstd: false, rawBytes: rawLen, storedBytes: rawLen });
    return r.bytes(rawLen, "body");
  }
  const zLen = r.varint("compressed length");
  const zAt = r.pos;
  const z = r.bytes(zLen, "compressed body");
  let out: Uint8Array;
  try {
    out = zstdDecompressSync(z, { maxOutputLength: Math.max(rawLen, 1) });
  } catch (err) {
    return r.fail(`zstd: ${(err as Error).message}`, zAt);
  }
  if (out.length !== rawLen) r.fail(`zstd gave ${out.length} bytes, header says ${rawLen}`, zAt);
  if (info) Object.assign(info, { zstd: true, rawBytes: rawLen, storedBytes: zLen });
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}
