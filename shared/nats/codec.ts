/** JSON on the wire: every JSON message between services goes through these two. */
const enc = new TextEncoder();
const dec = new TextDecoder();

export function toJsonBytes(value: unknown): Uint8Array {
  return enc.encode(JSON.stringify(value));
}

export function fromJsonBytes<T>(bytes: Uint8Array): T {
  return JSON.parse(dec.decode(bytes)) as T;
}
