/** A tiny protobuf writer for the decoder tests: builds OTLP messages field by field. */

export function varint(v: bigint | number): number[] {
  let x = BigInt.asUintN(64, BigInt(v));
  const out: number[] = [];
  do {
    let b = Number(x & 0x7fn);
    x >>= 7n;
    if (x) b |= 0x80;
    out.push(b);
  } while (x);
  return out;
}

const tag = (no: number, wire: number) => varint((no << 3) | wire);

export function len(no: number, ...parts: (number[] | Uint8Array)[]): number[] {
  const body = parts.flatMap((p) => [...p]);
  return [...tag(no, 2), ...varint(body.length), ...body];
}
export const str = (no: number, s: string) => len(no, new TextEncoder().encode(s));
export const uint = (no: number, v: bigint | number) => [...tag(no, 0), ...varint(v)];
export function fixed64(no: number, v: bigint): number[] {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, true);
  return [...tag(no, 1), ...b];
}
export function double(no: number, v: number): number[] {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setFloat64(0, v, true);
  return [...tag(no, 1), ...b];
}
export const hexBytes = (h: string) => Uint8Array.from(h.match(/../g)!.map((x) => parseInt(x, 16)));

/** KeyValue with an AnyValue built by `value` (already a field list of AnyValue). */
export const kv = (no: number, key: string, value: number[]) => len(no, str(1, key), len(2, value));

export const bytes = (...parts: number[][]) => Uint8Array.from(parts.flat());
