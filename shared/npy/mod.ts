/**
 * NumPy `.npy` files: read fp32/fp16 arrays (format versions 1, 2 and 3; little- or
 * big-endian; C order) and write them (version 1, or 2 when the header needs it). The
 * reader checks every field of the header against the file's length and throws
 * `NpyFormatError` (a `SyntaxError` with the byte offset) on anything else.
 *
 * @example
 * ```ts
 * import { readNpy, writeNpy } from "./mod.ts";
 * const bytes = writeNpy({ dtype: "f32", shape: [2], data: new Float32Array([1, 2]) });
 * console.log(readNpy(bytes).shape); // [2]
 * ```
 * @module
 */
import { shapeSize, type Tensor } from "../dtype/mod.ts";

/** A malformed `.npy` file; `offset` is where reading failed. */
export class NpyFormatError extends SyntaxError {
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(`npy: ${message} (at byte ${offset})`);
    this.name = "NpyFormatError";
    this.offset = offset;
  }
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/**
 * Parses a `.npy` file into a tensor (`f32` or `f16`; data copied into aligned storage).
 *
 * @example
 * ```ts
 * import { readNpy, writeNpy } from "./mod.ts";
 * const t = readNpy(writeNpy({ dtype: "f16", shape: [1, 1], data: new Uint16Array([0x3c00]) }));
 * console.log(t.dtype, t.data[0]); // "f16" 15360
 * ```
 */
export function readNpy(bytes: Uint8Array): Tensor {
  if (bytes.length < 10) throw new NpyFormatError("file too short", bytes.length);
  for (let i = 0; i < 6; i++) if (bytes[i] !== MAGIC[i]) throw new NpyFormatError("bad magic", i);
  const major = bytes[6];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number, headerStart: number;
  if (major === 1) [headerLen, headerStart] = [dv.getUint16(8, true), 10];
  else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new NpyFormatError("file too short", bytes.length);
    [headerLen, headerStart] = [dv.getUint32(8, true), 12];
  } else throw new NpyFormatError(`unsupported format version ${major}`, 6);
  const dataStart = headerStart + headerLen;
  if (dataStart > bytes.length) throw new NpyFormatError(`header length ${headerLen} past end of file`, 8);
  const header = major === 3
    ? new TextDecoder().decode(bytes.subarray(headerStart, dataStart))
    : String.fromCharCode(...bytes.subarray(headerStart, Math.min(dataStart, headerStart + 65536)));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new NpyFormatError(`header is not a descr/fortran_order/shape dict: ${header.trim()}`, headerStart);
  }
  if (fortran === "True") throw new NpyFormatError("Fortran-order arrays are not supported", headerStart);
  const shape = shapeText.split(",").map((s) => s.trim()).filter((s) => s !== "").map((s) => {
    if (!/^\d+$/.test(s)) throw new NpyFormatError(`bad dimension '${s}'`, headerStart);
    return Number(s);
  });
  const m = /^([<>|=])([fi])(\d)$/.exec(descr);
  const kind = m && m[2] === "f" ? m[3] : undefined;
  if (kind !== "4" && kind !== "2") throw new NpyFormatError(`unsupported dtype '${descr}'`, headerStart);
  const bigEndian = m![1] === ">";
  const width = Number(kind);
  const n = shapeSize(shape);
  if (!Number.isSafeInteger(n * width) || dataStart + n * width > bytes.length) {
    throw new NpyFormatError(`shape [${shape}] needs ${n * width} bytes of data`, dataStart);
  }
  const raw = bytes.slice(dataStart, dataStart + n * width);
  if (bigEndian) swapBytes(raw, width);
  return width === 4
    ? { dtype: "f32", shape, data: new Float32Array(raw.buffer, 0, n) }
    : { dtype: "f16", shape, data: new Uint16Array(raw.buffer, 0, n) };
}

function swapBytes(b: Uint8Array, width: number): void {
  for (let i = 0; i + width <= b.length; i += width) {
    for (let j = 0; j < width >> 1; j++) {
      const t = b[i + j];
      b[i + j] = b[i + width - 1 - j];
      b[i + width - 1 - j] = t;
    }
  }
}

/**
 * Serialises an `f32` or `f16` tensor as a little-endian C-order `.npy` file. `bf16` has no
 * NumPy dtype and is refused with `TypeError` (convert it first).
 *
 * @example
 * ```ts
 * import { writeNpy } from "./mod.ts";
 * console.log(writeNpy({ dtype: "f32", shape: [0], data: new Float32Array(0) }).length); // 128
 * ```
 */
export function writeNpy(t: Tensor): Uint8Array {
  if (t.dtype === "bf16") throw new TypeError("npy has no bf16 dtype; convert to f32 first");
  const n = shapeSize(t.shape);
  if (t.data.length !== n) {
    throw new TypeError(`shape [${t.shape}] needs ${n} values, data has ${t.data.length}`);
  }
  const descr = t.dtype === "f32" ? "<f4" : "<f2";
  const shape = t.shape.length === 1 ? `(${t.shape[0]},)` : `(${t.shape.join(", ")})`;
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const v1 = dict.length + 11 <= 65535;
  const pre = v1 ? 10 : 12;
  const total = Math.ceil((pre + dict.length + 1) / 64) * 64;
  dict = dict + " ".repeat(total - pre - dict.length - 1) + "\n";
  const data = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const out = new Uint8Array(total + data.length);
  out.set(MAGIC);
  out[6] = v1 ? 1 : 2;
  const dv = new DataView(out.buffer);
  if (v1) dv.setUint16(8, dict.length, true);
  else dv.setUint32(8, dict.length, true);
  for (let i = 0; i < dict.length; i++) out[pre + i] = dict.charCodeAt(i);
  out.set(data, total);
  return out;
}
