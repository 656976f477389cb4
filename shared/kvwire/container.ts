/**
 * The KV bundle container: every bundle that moves between prefill, compression and decode.
 *
 *   offset 0  magic "KVRB"
 *          4  format version (u8) = 1
 *          5  kind (u8): 1 raw layer, 2 eviction metric, 3 encoded layer
 *          6  reserved (u16) = 0
 *          8  header length H (u32 LE), at most 1 MiB
 *         12  header: UTF-8 JSON, self-describing; `sections` lists the byte length of each
 *             section that follows, in order
 *     12 + H  sections, back to back, nothing after the last
 *
 * Decoding checks every length against the bytes actually present before using it and
 * throws `BundleFormatError` (a `SyntaxError` with the byte offset) on anything else.
 * @module
 */

export const BUNDLE_MAGIC = [0x4b, 0x56, 0x52, 0x42]; // "KVRB"
export const BUNDLE_VERSION = 1;
const MAX_HEADER_BYTES = 1 << 20;

export const BundleKind = { rawLayer: 1, metric: 2, encodedLayer: 3 } as const;
export type BundleKind = (typeof BundleKind)[keyof typeof BundleKind];

/** A corrupt or foreign bundle. `offset` is where reading stopped making sense. */
export class BundleFormatError extends SyntaxError {
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(`${message} (at byte ${offset})`);
    this.name = "BundleFormatError";
    this.offset = offset;
  }
}

export interface SectionSpec {
  name: string;
  bytes: number;
}

export interface Bundle<H> {
  kind: BundleKind;
  header: H;
  /** Views into the bundle's bytes, in header order. */
  sections: Map<string, Uint8Array>;
}

const te = new TextEncoder();
const td = new TextDecoder("utf-8", { fatal: true });

/** Writes a bundle; `header.sections` is filled in from `sections`. */
export function writeBundle(
  kind: BundleKind,
  header: Record<string, unknown>,
  sections: [string, Uint8Array][],
): Uint8Array {
  const specs: SectionSpec[] = sections.map(([name, b]) => ({ name, bytes: b.length }));
  const h = te.encode(JSON.stringify({ ...header, sections: specs }));
  let total = 12 + h.length;
  for (const [, b] of sections) total += b.length;
  const out = new Uint8Array(total);
  out.set(BUNDLE_MAGIC, 0);
  out[4] = BUNDLE_VERSION;
  out[5] = kind;
  new DataView(out.buffer).setUint32(8, h.length, true);
  out.set(h, 12);
  let o = 12 + h.length;
  for (const [, b] of sections) {
    out.set(b, o);
    o += b.length;
  }
  return out;
}

/** Reads a bundle's framing; the caller validates the header fields of its kind. */
export function readBundle(bytes: Uint8Array): Bundle<Record<string, unknown>> {
  if (bytes.length < 12) throw new BundleFormatError(`bundle of ${bytes.length} bytes is too short`, 0);
  for (let i = 0; i < 4; i++) {
    if (bytes[i] !== BUNDLE_MAGIC[i]) throw new BundleFormatError("not a KV bundle (bad magic)", i);
  }
  if (bytes[4] !== BUNDLE_VERSION) {
    throw new BundleFormatError(
      `unsupported bundle version ${bytes[4]} (this build reads ${BUNDLE_VERSION})`,
      4,
    );
  }
  const kind = bytes[5];
  if (kind !== 1 && kind !== 2 && kind !== 3) throw new BundleFormatError(`unknown bundle kind ${kind}`, 5);
  const hLen = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(8, true);
  if (hLen > MAX_HEADER_BYTES || 12 + hLen > bytes.length) {
    throw new BundleFormatError(`header length ${hLen} exceeds the bundle`, 8);
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(td.decode(bytes.subarray(12, 12 + hLen)));
  } catch {
    throw new BundleFormatError("header is not valid UTF-8 JSON", 12);
  }
  if (!header || typeof header !== "object" || Array.isArray(header)) {
    throw new BundleFormatError("header is not an object", 12);
  }
  const specs = header.sections;
  if (!Array.isArray(specs)) throw new BundleFormatError("header has no section table", 12);
  const sections = new Map<string, Uint8Array>();
  let o = 12 + hLen;
  for (const s of specs as SectionSpec[]) {
    if (
      !s || typeof s.name !== "string" || !Number.isSafeInteger(s.bytes) || s.bytes < 0 ||
      s.bytes > bytes.length - o || sections.has(s.name)
    ) {
      throw new BundleFormatError(`bad section entry ${JSON.stringify(s).slice(0, 80)}`, o);
    }
    sections.set(s.name, bytes.subarray(o, o + s.bytes));
    o += s.bytes;
  }
  if (o !== bytes.length) throw new BundleFormatError(`${bytes.length - o} bytes after the last section`, o);
  return { kind: kind as BundleKind, header, sections };
}

/** Checks that a header field is an integer in [min, max]. */
export function intField(h: Record<string, unknown>, name: string, min: number, max: number): number {
  const v = h[name];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new BundleFormatError(
      `header field '${name}' must be an integer in [${min}, ${max}], got ${v}`,
      12,
    );
  }
  return v;
}

export function stringField(h: Record<string, unknown>, name: string): string {
  const v = h[name];
  if (typeof v !== "string" || v.length > 256) {
    throw new BundleFormatError(`header field '${name}' is missing`, 12);
  }
  return v;
}

/** A section with exactly `bytes` bytes. */
export function section(b: Bundle<unknown>, name: string, bytes?: number): Uint8Array {
  const s = b.sections.get(name);
  if (!s) throw new BundleFormatError(`section '${name}' is missing`, 12);
  if (bytes !== undefined && s.length !== bytes) {
    throw new BundleFormatError(`section '${name}' has ${s.length} bytes, expected ${bytes}`, 12);
  }
  return s;
}

/** Float32 view of a section, copied when unaligned. */
export function f32(bytesView: Uint8Array): Float32Array {
  if (bytesView.byteOffset % 4 === 0) {
    return new Float32Array(bytesView.buffer, bytesView.byteOffset, bytesView.length / 4);
  }
  return new Float32Array(bytesView.slice().buffer);
}

export function bytesOf(a: Float32Array | Int32Array | Uint16Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
