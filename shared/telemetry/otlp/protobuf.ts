/**
 * A minimal protobuf wire-format reader: enough to walk OTLP messages field by field. It
 * trusts nothing in the stream: every length is checked against the buffer, and a corrupt
 * stream throws `ProtobufError` with the byte offset.
 * @module
 */

/** A malformed protobuf stream; `offset` is where reading failed. */
export class ProtobufError extends SyntaxError {
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(`${message} at byte ${offset}`);
    this.name = "ProtobufError";
    this.offset = offset;
  }
}

export const WIRE_VARINT = 0;
export const WIRE_I64 = 1;
export const WIRE_LEN = 2;
export const WIRE_I32 = 5;

/** One field as read: its number, wire type and value (bigint, bytes, or a sub-reader). */
export interface Field {
  no: number;
  wire: number;
  /** Offset of the field's value, for error messages. */
  at: number;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Reads fields from `buf[start, end)`. */
export class ProtoReader {
  readonly buf: Uint8Array;
  pos: number;
  readonly end: number;
  #view: DataView;

  constructor(buf: Uint8Array, start = 0, end = buf.length) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  done(): boolean {
    return this.pos >= this.end;
  }

  /** Next field's tag; call a `read*` or `skip` for its value next. */
  tag(): Field {
    const at = this.pos;
    const t = this.varint();
    const no = Number(t >> 3n);
    const wire = Number(t & 7n);
    if (no === 0) throw new ProtobufError("field number 0", at);
    return { no, wire, at: this.pos };
  }

  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    const start = this.pos;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new ProtobufError("truncated varint", start);
      const b = this.buf[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return BigInt.asUintN(64, result);
      shift += 7n;
    }
    throw new ProtobufError("varint longer than 10 bytes", start);
  }

  /** A varint that must fit a JS number (lengths, enums, counts). */
  uint32(): number {
    const at = this.pos;
    const v = this.varint();
    if (v > 0xffffffffn) throw new ProtobufError("value exceeds 32 bits", at);
    return Number(v);
  }

  fixed64(): bigint {
    this.#need(8);
    const v = this.#view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }

  double(): number {
    this.#need(8);
    const v = this.#view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  fixed32(): number {
    this.#need(4);
    const v = this.#view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** A length-delimited value as a view into the buffer. */
  bytes(): Uint8Array {
    const len = this.uint32();
    this.#need(len);
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  string(): string {
    const at = this.pos;
    try {
      return utf8.decode(this.bytes());
    } catch (err) {
      if (err instanceof ProtobufError) throw err;
      throw new ProtobufError("invalid UTF-8 in string", at);
    }
  }

  /** A length-delimited embedded message as its own reader. */
  message(): ProtoReader {
    const len = this.uint32();
    this.#need(len);
    const sub = new ProtoReader(this.buf, this.pos, this.pos + len);
    this.pos += len;
    return sub;
  }

  /** Skips a field's value of wire type `wire`. */
  skip(wire: number): void {
    switch (wire) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_I64:
        this.#need(8);
        this.pos += 8;
        return;
      case WIRE_LEN: {
        const len = this.uint32();
        this.#need(len);
        this.pos += len;
        return;
      }
      case WIRE_I32:
        this.#need(4);
        this.pos += 4;
        return;
      default:
        throw new ProtobufError(`unsupported wire type ${wire}`, this.pos);
    }
  }

  /** Throws unless the field has wire type `wire`. */
  expect(f: Field, wire: number): void {
    if (f.wire !== wire) {
      throw new ProtobufError(`field ${f.no} has wire type ${f.wire}, expected ${wire}`, f.at);
    }
  }

  #need(n: number): void {
    if (n > this.end - this.pos) {
      throw new ProtobufError(`truncated: need ${n} bytes, have ${this.end - this.pos}`, this.pos);
    }
  }
}
