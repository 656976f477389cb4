/**
 * The container: the self-describing header every stream opens with, and the digest of the
 * reconstructed values it closes the decode with.
 *
 * ```
 * magic "KVRZ" | version u8 | codec u8 | dtype u8 | ndim u8 | dims varint×ndim | crc32 u32
 * then the codec's body (its stages, each tagged), which must end exactly at the end.
 * ```
 * @module
 */
import { crc32 } from "node:zlib";
import { type ByteReader, ByteWriter } from "./bytes.ts";
import { StreamLimitError } from "./errors.ts";
import { CODEC_IDS, type CodecName, type Dtype } from "./types.ts";

/** Format version; bump it when the bytes of any golden fixture change. */
export const FORMAT_VERSION = 1;
const MAGIC = [0x4b, 0x56, 0x52, 0x5a]; // KVRZ
const DTYPE_IDS: Readonly<Record<Dtype, number>> = { f32: 1, f16: 2, bf16: 3 };
/** Most dimensions a stream may declare. */
export const MAX_NDIM = 8;
/** Default cap on decoded elements. */
export const DEFAULT_MAX_ELEMENTS = 2 ** 27;

/** The parsed header. */
export interface Header {
  version: number;
  codec: CodecName;
  dtype: Dtype;
  shape: number[];
  digest: number;
}

/** crc32 of a typed array's bytes. */
export function digestOf(data: Float32Array | Uint16Array): number {
  return crc32(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)) >>> 0;
}

/** Starts a stream: writes the header and returns the writer for the body. */
export function writeHeader(h: Omit<Header, "version">, sizeHint: number): ByteWriter {
  const w = new ByteWriter(64 + sizeHint);
  for (const b of MAGIC) w.u8(b);
  w.u8(FORMAT_VERSION);
  w.u8(CODEC_IDS[h.codec]);
  w.u8(DTYPE_IDS[h.dtype]);
  w.u8(h.shape.length);
  for (const d of h.shape) w.varint(d);
  w.u32(h.digest);
  return w;
}

/** Reads and validates the header, checking the shape against `maxElements`. */
export function readHeader(r: ByteReader, maxElements: number): Header {
  for (let i = 0; i < 4; i++) {
    if (r.u8("magic") !== MAGIC[i]) r.fail("not a kvrelay codec stream (bad magic)", i);
  }
  const version = r.u8("version");
  if (version !== FORMAT_VERSION) r.fail(`unsupported format version ${version}`, 4);
  const codecId = r.u8("codec");
  const codec = (Object.keys(CODEC_IDS) as CodecName[]).find((c) => CODEC_IDS[c] === codecId);
  if (!codec) r.fail(`unknown codec id ${codecId}`, 5);
  const dtypeId = r.u8("dtype");
  const dtype = (Object.keys(DTYPE_IDS) as Dtype[]).find((d) => DTYPE_IDS[d] === dtypeId);
  if (!dtype) r.fail(`unknown dtype id ${dtypeId}`, 6);
  const ndim = r.u8("ndim");
  if (ndim > MAX_NDIM) r.fail(`${ndim} dimensions (at most ${MAX_NDIM})`, 7);
  const shape: number[] = [];
  let n = 1;
  for (let i = 0; i < ndim; i++) {
    const at = r.pos;
    const d = r.varint("dimension", 2 ** 40);
    shape.push(d);
    n *= d;
    if (n > maxElements) {
      throw new StreamLimitError(`shape [${shape}...] over the limit of ${maxElements} elements`, at);
    }
  }
  const digest = r.u32("digest");
  return { version, codec, dtype, shape, digest };
}
