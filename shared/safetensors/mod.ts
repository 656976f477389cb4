/**
 * safetensors files (https://github.com/huggingface/safetensors): an 8-byte little-endian
 * header length, a JSON header `{name: {dtype, shape, data_offsets}, "__metadata__"?}`,
 * then the tensors' bytes. `parseSafetensors` validates the whole header before anything
 * is read — every dtype known, every shape a list of non-negative integers, every byte
 * range inside the buffer, the right size for its shape, and the ranges tiling the data
 * area without holes or overlaps — and throws `SafetensorsFormatError` otherwise.
 * `tensor(name)` converts F32/F16/BF16 entries to a {@link Tensor}; other dtypes are listed
 * and reachable as raw bytes through `bytes(name)`. `writeSafetensors` writes F32/F16/BF16
 * tensors and any dtype given as raw bytes.
 *
 * @example
 * ```ts
 * import { parseSafetensors, writeSafetensors } from "./mod.ts";
 * const file = writeSafetensors({ w: { dtype: "f32", shape: [2], data: new Float32Array([1, 2]) } });
 * console.log(parseSafetensors(file).tensor("w").data); // Float32Array [1, 2]
 * ```
 * @module
 */
import { shapeSize, type Tensor } from "../dtype/mod.ts";

/** A malformed safetensors file; `offset` is the byte where the problem was found. */
export class SafetensorsFormatError extends SyntaxError {
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(`safetensors: ${message} (at byte ${offset})`);
    this.name = "SafetensorsFormatError";
    this.offset = offset;
  }
}

/** Element size of every dtype in the safetensors spec. */
export const SAFETENSORS_DTYPE_BYTES: Readonly<Record<string, number>> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
};

/** One entry of the header, with its byte range relative to the start of the data area. */
export interface SafetensorsEntry {
  name: string;
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
}

/** A parsed file: the validated header and accessors for each tensor. */
export interface Safetensors {
  metadata: Record<string, string>;
  entries: Map<string, SafetensorsEntry>;
  /** Raw little-endian bytes of one tensor (a view, not a copy). */
  bytes(name: string): Uint8Array;
  /** An F32/F16/BF16 tensor, copied into aligned storage; `TypeError` for other dtypes. */
  tensor(name: string): Tensor;
}

/** Options for {@link parseSafetensors}. */
export interface ParseOptions {
  /** Largest header accepted, in bytes (default 100 MB, as the reference implementation). */
  maxHeaderBytes?: number;
}

/**
 * Parses and validates a safetensors file held in memory.
 *
 * @example
 * ```ts
 * import { parseSafetensors, writeSafetensors } from "./mod.ts";
 * const st = parseSafetensors(writeSafetensors({}, { metadata: { format: "pt" } }));
 * console.log(st.metadata.format, st.entries.size); // "pt" 0
 * ```
 */
export function parseSafetensors(file: Uint8Array, options: ParseOptions = {}): Safetensors {
  const maxHeader = options.maxHeaderBytes ?? 100_000_000;
  if (file.length < 8) throw new SafetensorsFormatError("file shorter than the 8-byte header length", 0);
  const dv = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const n = dv.getBigUint64(0, true);
  if (n > BigInt(maxHeader)) {
    throw new SafetensorsFormatError(`header length ${n} over the limit ${maxHeader}`, 0);
  }
  const headerLen = Number(n);
  if (8 + headerLen > file.length) {
    throw new SafetensorsFormatError(
      `header length ${headerLen} past the end of a ${file.length}-byte file`,
      0,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(file.subarray(8, 8 + headerLen)));
  } catch (err) {
    throw new SafetensorsFormatError(`header is not UTF-8 JSON: ${(err as Error).message}`, 8);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new SafetensorsFormatError("header is not a JSON object", 8);
  }
  const dataStart = 8 + headerLen;
  const dataLen = file.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries = new Map<string, SafetensorsEntry>();
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
        throw new SafetensorsFormatError("__metadata__ is not an object", 8);
      }
      for (const [k, v] of Object.entries(raw)) {
        if (typeof v !== "string") throw new SafetensorsFormatError(`__metadata__.${k} is not a string`, 8);
        metadata[k] = v;
      }
      continue;
    }
    entries.set(name, checkEntry(name, raw, dataLen));
  }
  const sorted = [...entries.values()].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (const e of sorted) {
    if (e.begin !== pos) {
      throw new SafetensorsFormatError(
        `tensor '${e.name}' starts at ${e.begin}, expected ${pos} (hole or overlap)`,
        dataStart + Math.min(e.begin, pos),
      );
    }
    pos = e.end;
  }
  if (pos !== dataLen) {
    throw new SafetensorsFormatError(`data area is ${dataLen} bytes, tensors cover ${pos}`, dataStart + pos);
  }
  const get = (name: string): SafetensorsEntry => {
    const e = entries.get(name);
    if (!e) throw new RangeError(`no tensor '${name}' in this file`);
    return e;
  };
  const bytes = (name: string): Uint8Array => {
    const e = get(name);
    return file.subarray(dataStart + e.begin, dataStart + e.end);
  };
  return {
    metadata,
    entries,
    bytes,
    tensor(name: string): Tensor {
      const e = get(name);
      const copy = bytes(name).slice();
      if (e.dtype === "F32") return { dtype: "f32", shape: e.shape, data: new Float32Array(copy.buffer) };
      if (e.dtype === "F16") return { dtype: "f16", shape: e.shape, data: new Uint16Array(copy.buffer) };
      if (e.dtype === "BF16") return { dtype: "bf16", shape: e.shape, data: new Uint16Array(copy.buffer) };
      throw new TypeError(`tensor '${name}' is ${e.dtype}; only F32, F16 and BF16 convert to a Tensor`);
    },
  };
}

function checkEntry(name: string, raw: unknown, dataLen: number): SafetensorsEntry {
  const bad = (why: string) => new SafetensorsFormatError(`tensor '${name}': ${why}`, 8);
  if (typeof raw !== "object" || raw === null) throw bad("entry is not an object");
  const { dtype, shape, data_offsets: offs } = raw as Record<string, unknown>;
  if (typeof dtype !== "string" || !Object.hasOwn(SAFETENSORS_DTYPE_BYTES, dtype)) {
    throw bad(`unknown dtype ${JSON.stringify(dtype)}`);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw bad(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  }
  if (
    !Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0) ||
    offs[0] > offs[1] || offs[1] > dataLen
  ) {
    throw bad(`data_offsets ${JSON.stringify(offs)} outside the ${dataLen}-byte data area`);
  }
  const want = shapeSize(shape) * SAFETENSORS_DTYPE_BYTES[dtype];
  if (offs[1] - offs[0] !== want) {
    throw bad(`shape [${shape}] of ${dtype} needs ${want} bytes, has ${offs[1] - offs[0]}`);
  }
  return { name, dtype, shape: [...shape], begin: offs[0], end: offs[1] };
}

/** Options for {@link writeSafetensors}. */
export interface WriteOptions {
  metadata?: Record<string, string>;
}

const ST_DTYPE = { f32: "F32", f16: "F16", bf16: "BF16" } as const;

/** A tensor written as its raw little-endian bytes, for dtypes with no {@link Tensor} form (I8, ...). */
export interface RawTensor {
  /** A safetensors dtype name, e.g. `"I8"`. */
  stDtype: string;
  shape: number[];
  bytes: Uint8Array;
}

/**
 * Writes tensors (in the object's key order) as a safetensors file; the header is padded
 * with spaces to a multiple of 8 bytes as the reference writer does. A {@link RawTensor} is
 * written byte for byte under its own dtype.
 *
 * @example
 * ```ts
 * import { writeSafetensors } from "./mod.ts";
 * const file = writeSafetensors({ x: { dtype: "f16", shape: [1], data: new Uint16Array([0x3c00]) } });
 * console.log(file.length % 8); // 2
 * ```
 */
export function writeSafetensors(
  tensors: Record<string, Tensor | RawTensor>,
  options: WriteOptions = {},
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (options.metadata) header.__metadata__ = options.metadata;
  let pos = 0;
  const parts: Uint8Array[] = [];
  for (const [name, t] of Object.entries(tensors)) {
    const n = shapeSize(t.shape);
    let b: Uint8Array, dtype: string;
    if ("bytes" in t) {
      const size = SAFETENSORS_DTYPE_BYTES[t.stDtype];
      if (size === undefined) throw new TypeError(`tensor '${name}': unknown dtype ${t.stDtype}`);
      if (t.bytes.length !== n * size) {
        throw new TypeError(`tensor '${name}': shape [${t.shape}] of ${t.stDtype} needs ${n * size} bytes`);
      }
      b = t.bytes, dtype = t.stDtype;
    } else {
      if (t.data.length !== n) throw new TypeError(`tensor '${name}': shape [${t.shape}] needs ${n} values`);
      b = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), dtype = ST_DTYPE[t.dtype];
    }
    header[name] = { dtype, shape: t.shape, data_offsets: [pos, pos + b.length] };
    pos += b.length;
    parts.push(b);
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.length + pos);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let at = 8 + head.length;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Reads and parses a safetensors file from disk.
 *
 * @example
 * ```ts ignore
 * import { readSafetensorsFile } from "./mod.ts";
 * const st = await readSafetensorsFile("model.safetensors");
 * console.log([...st.entries.keys()]);
 * ```
 */
export async function readSafetensorsFile(path: string, options: ParseOptions = {}): Promise<Safetensors> {
  return parseSafetensors(await Deno.readFile(path), options);
}
