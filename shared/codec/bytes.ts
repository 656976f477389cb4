/**
 * Growable byte writer and bounds-checked byte reader for the container and the stages'
 * metadata. The reader never trusts a length: every read past the end, every varint
 * longer than 7 bytes or beyond 2^53, throws `CorruptStreamError` with the offset.
 * @module
 */
import { CorruptStreamError } from "./errors.ts";

/** Appends bytes, little-endian numbers and LEB128 varints to a growing buffer. */
export class ByteWriter {
  buf: Uint8Array;
  pos = 0;
  #dv: DataView;
  /** `backing`, when given, is written into (a scratch buffer) until it runs out. */
  constructor(capacity = 256, backing?: Uint8Array) {
    this.buf = backing ?? new Uint8Array(capacity);
    this.#dv = new DataView(this.buf.buffer);
  }
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.#dv = new DataView(next.buffer);
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }
  u32(v: number): void {
    this.ensure(4);
    this.#dv.setUint32(this.pos, v, true);
    this.pos += 4;
  }
  f64(v: number): void {
    this.ensure(8);
    this.#dv.setFloat64(this.pos, v, true);
    this.pos += 8;
  }
  varint(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`varint out of range: ${v}`);
    this.ensure(8);
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  /** A copy of what was written. */
  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

/** Reads what a {@link ByteWriter} wrote, checking every access against the end. */
export class ByteReader {
  readonly buf: Uint8Array;
  pos: number;
  readonly end: number;
  #dv: DataView;
  constructor(buf: Uint8Array, start = 0, end = buf.length) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
    this.#dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  fail(message: string, at = this.pos): never {
    throw new CorruptStreamError(message, at);
  }
  need(n: number, what: string): void {
    if (n < 0 || n > this.end - this.pos) this.fail(`${what}: need ${n} bytes, ${this.end - this.pos} left`);
  }
  u8(what = "byte"): number {
    this.need(1, what);
    return this.buf[this.pos++];
  }
  u32(what = "u32"): number {
    this.need(4, what);
    const v = this.#dv.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  f64(what = "f64"): number {
    this.need(8, what);
    const v = this.#dv.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }
  varint(what = "varint", max = Number.MAX_SAFE_INTEGER): number {
    const at = this.pos;
    let v = 0, mul = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8(what);
      v += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) {
        if (v > max) this.fail(`${what} ${v} exceeds ${max}`, at);
        return v;
      }
      mul *= 0x80;
    }
    return this.fail(`${what}: varint too long`, at);
  }
  bytes(n: number, what = "bytes"): Uint8Array {
    this.need(n, what);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  /** Reads a stage tag and fails unless it is the expected one. */
  tag(expected: number, stage: string): void {
    const at = this.pos;
    const t = this.u8(`${stage} tag`);
    if (t !== expected) this.fail(`expected ${stage} stage tag ${expected}, found ${t}`, at);
  }
}
