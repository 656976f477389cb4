/**
 * Protocol Buffers wire-format writer: varints, fixed32 floats, length-delimited bytes and
 * nested messages. It knows nothing about ONNX; `encode.ts` maps the ONNX schema onto it.
 *
 * Nested messages and large byte fields are kept as a list of parts and joined once by
 * `finish()`, so a weight buffer is copied a single time however deep it sits.
 * @module
 */

const WIRE_VARINT = 0;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

const textEncoder = new TextEncoder();

/** Accumulates one protobuf message. */
export class ProtoWriter {
  #parts: Uint8Array[] = [];
  #scratch: number[] = [];
  #length = 0;

  /** Bytes written so far. */
  get length(): number {
    return this.#length;
  }

  #flushScratch(): void {
    if (this.#scratch.length === 0) return;
    this.#parts.push(Uint8Array.from(this.#scratch));
    this.#scratch = [];
  }

  #pushVarint(value: number | bigint): void {
    let v = BigInt.asUintN(64, BigInt(value));
    if (v < 0x80n) {
      this.#scratch.push(Number(v));
      this.#length += 1;
      return;
    }
    while (v >= 0x80n) {
      this.#scratch.push(Number(v & 0x7fn) | 0x80);
      this.#length += 1;
      v >>= 7n;
    }
    this.#scratch.push(Number(v));
    this.#length += 1;
  }

  #tag(field: number, wire: number): void {
    this.#pushVarint(field * 8 + wire);
  }

  /** Writes an int32/int64/enum/bool field as a varint (negative numbers as 10-byte two's complement). */
  varint(field: number, value: number | bigint): this {
    this.#tag(field, WIRE_VARINT);
    this.#pushVarint(value);
    return this;
  }

  /** Writes a `float` field (fixed32, little-endian). */
  float32(field: number, value: number): this {
    this.#tag(field, WIRE_FIXED32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    for (const x of b) this.#scratch.push(x);
    this.#length += 4;
    return this;
  }

  /** Writes a `bytes` field; the array is referenced, not copied, until `finish()`. */
  bytes(field: number, value: Uint8Array): this {
    this.#tag(field, WIRE_LEN);
    this.#pushVarint(value.byteLength);
    this.#flushScratch();
    this.#parts.push(value);
    this.#length += value.byteLength;
    return this;
  }

  /** Writes a `string` field as UTF-8. */
  string(field: number, value: string): this {
    return this.bytes(field, textEncoder.encode(value));
  }

  /** Writes a nested message; `sub` must not be written to afterwards. */
  message(field: number, sub: ProtoWriter): this {
    this.#tag(field, WIRE_LEN);
    this.#pushVarint(sub.#length);
    this.#flushScratch();
    sub.#flushScratch();
    for (const p of sub.#parts) this.#parts.push(p);
    this.#length += sub.#length;
    return this;
  }

  /** Joins every part into one buffer. */
  finish(): Uint8Array {
    this.#flushScratch();
    const out = new Uint8Array(this.#length);
    let off = 0;
    for (const p of this.#parts) {
      out.set(p, off);
      off += p.byteLength;
    }
    return out;
  }
}
