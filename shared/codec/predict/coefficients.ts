/**
 * Cross-channel predictor coefficients: for each (role, layer, KV head) of a model, channel c of
 * a token is predicted as Σ_{j<c} W[c][j]·x[j] (the same token's earlier channels) + A[c]·x'[c]
 * (the previous token's channel c) + B[c]. Calibrated offline (`kvrelay calibrate-kv`), stored
 * beside the model as `kv_predictor.bin`, and named in each stream by the first 8 bytes of the
 * file's SHA-256, so a decoder holding another set refuses the stream instead of misreading it.
 *
 * ```
 * magic "KVPC" | version u8 | cols u16 | count u16
 * count × ( role u8 (0 key, 1 value) | layer u16 | head u16 |
 *           W f32 × cols(cols-1)/2 (row c holds j < c) | A f32 × cols | B f32 × cols )
 * ```
 * @module
 */
import { createHash } from "node:crypto";
import { ByteReader, ByteWriter } from "../bytes.ts";

const MAGIC = [0x4b, 0x56, 0x50, 0x43]; // KVPC
const VERSION = 1;
/** The file a model folder keeps its coefficients in. */
export const COEFFICIENT_FILE = "kv_predictor.bin";

/** One (role, layer, head)'s predictor. */
export interface ChannelPredictor {
  role: "key" | "value";
  layer: number;
  head: number;
  /** Lower triangle, row-major: W[c][j] at c(c-1)/2 + j. Float64 copies of the stored f32. */
  w: Float64Array;
  a: Float64Array;
  b: Float64Array;
}

/** A model's coefficient set. */
export interface CoefficientSet {
  /** First 8 bytes of the file's SHA-256, hex. */
  hash: string;
  cols: number;
  entries: ChannelPredictor[];
  /** The serialized file. */
  bytes: Uint8Array;
}

/** Key of an entry. */
export function slotKey(role: "key" | "value", layer: number, head: number): string {
  return `${role}/${layer}/${head}`;
}

/** The predictor of one slot, or undefined. */
export function findPredictor(
  set: CoefficientSet,
  role: "key" | "value",
  layer: number,
  head: number,
): ChannelPredictor | undefined {
  return set.entries.find((e) => e.role === role && e.layer === layer && e.head === head);
}

/** Serializes entries (values rounded to f32) and names the result by its hash. */
export function buildCoefficientSet(cols: number, entries: ChannelPredictor[]): CoefficientSet {
  const w = new ByteWriter();
  for (const b of MAGIC) w.u8(b);
  w.u8(VERSION);
  u16(w, cols);
  u16(w, entries.length);
  const tri = (cols * (cols - 1)) / 2;
  for (const e of entries) {
    if (e.w.length !== tri || e.a.length !== cols || e.b.length !== cols) {
      throw new RangeError(`coefficients of ${slotKey(e.role, e.layer, e.head)} have the wrong length`);
    }
    w.u8(e.role === "key" ? 0 : 1);
    u16(w, e.layer);
    u16(w, e.head);
    const f = Float32Array.from([...e.w, ...e.a, ...e.b]);
    w.bytes(new Uint8Array(f.buffer));
  }
  return parseCoefficientSet(w.finish());
}

function u16(w: ByteWriter, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new RangeError(`${v} does not fit in 16 bits`);
  w.u8(v & 0xff);
  w.u8(v >>> 8);
}

function readU16(r: ByteReader, what: string): number {
  return r.u8(what) | (r.u8(what) << 8);
}

/** Parses a coefficient file; `CorruptStreamError` when it is not one. */
export function parseCoefficientSet(bytes: Uint8Array): CoefficientSet {
  const r = new ByteReader(bytes);
  for (let i = 0; i < 4; i++) {
    if (r.u8("magic") !== MAGIC[i]) r.fail("not a KV predictor file (bad magic)", i);
  }
  const version = r.u8("version");
  if (version !== VERSION) r.fail(`unsupported KV predictor file version ${version}`, 4);
  const cols = readU16(r, "cols");
  if (cols < 1 || cols > 1024) r.fail(`${cols} channels (at most 1024)`, 5);
  const count = readU16(r, "count");
  const tri = (cols * (cols - 1)) / 2;
  const entries: ChannelPredictor[] = [];
  for (let i = 0; i < count; i++) {
    const roleId = r.u8("role");
    if (roleId > 1) r.fail(`unknown role ${roleId}`, r.pos - 1);
    const layer = readU16(r, "layer"), head = readU16(r, "head");
    const raw = r.bytes(4 * (tri + 2 * cols), "coefficients").slice();
    const f = Float64Array.from(new Float32Array(raw.buffer));
    if (!f.every(Number.isFinite)) r.fail(`non-finite coefficient in entry ${i}`);
    entries.push({
      role: roleId === 0 ? "key" : "value",
      layer,
      head,
      w: f.subarray(0, tri),
      a: f.subarray(tri, tri + cols),
      b: f.subarray(tri + cols),
    });
  }
  if (r.pos !== bytes.length) r.fail(`${bytes.length - r.pos} stray bytes after the coefficients`);
  const hash = createHash("sha256").update(bytes).digest("hex").slice(0, 16);
  return { hash, cols, entries, bytes };
}

// ---------------------------------------------------------------- registry

const registry = new Map<string, CoefficientSet>();

/**
 * Makes a set known to the decoder (a model does this when it loads, so prefill and decode,
 * which load the same model, hold the same set). Returns the set.
 */
export function registerCoefficientSet(set: CoefficientSet): CoefficientSet {
  registry.set(set.hash, set);
  return set;
}

/** Every registered set (what a worker thread's decoder must be told about). */
export function registeredCoefficientSets(): CoefficientSet[] {
  return [...registry.values()];
}

/** Registers the set in `bytes` unless one with `hash` is already known (a worker's side). */
export function adoptCoefficientSet(hash: string, bytes: Uint8Array): void {
  if (!registry.has(hash)) registerCoefficientSet(parseCoefficientSet(bytes));
}

/** The registered set with this hash, or undefined. */
export function coefficientSetByHash(hash: string): CoefficientSet | undefined {
  return registry.get(hash);
}

/**
 * Reads and registers `dir/kv_predictor.bin` when the folder has one; undefined otherwise
 * (a model without coefficients still encodes and decodes, without the cross-channel predictor).
 */
export async function loadCoefficientsBeside(dir: string): Promise<CoefficientSet | undefined> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(`${dir}/${COEFFICIENT_FILE}`);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) return undefined;
    throw err;
  }
  return registerCoefficientSet(parseCoefficientSet(bytes));
}
