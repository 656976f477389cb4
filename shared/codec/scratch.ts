/**
 * Reusable scratch buffers for a frame's temporaries (symbols, bins, the fp32 copy of the
 * input, bit windows). A fresh multi-megabyte typed array costs far more than the work done
 * in it (the pages are zeroed and faulted in on first touch: ~3 ms per MiB measured on the
 * benchmark machine), so each named buffer is kept and grown. Everything here is
 * synchronous and every name has one user at a time; a view is only valid until the next
 * call with the same name. Buffers past {@link MAX_SCRATCH_BYTES} are not kept.
 * @module
 */

/** Largest buffer kept between calls. */
export const MAX_SCRATCH_BYTES = 64 << 20;

const pool = new Map<string, ArrayBuffer>();

function buffer(name: string, bytes: number): ArrayBuffer {
  if (bytes > MAX_SCRATCH_BYTES) return new ArrayBuffer(bytes);
  let b = pool.get(name);
  if (!b || b.byteLength < bytes) {
    b = new ArrayBuffer(Math.max(bytes, 4096, b ? Math.min(2 * b.byteLength, MAX_SCRATCH_BYTES) : 0));
    pool.set(name, b);
  }
  return b;
}

/** A scratch Int8Array of `n` bytes (contents undefined). */
export function scratchI8(name: string, n: number): Int8Array {
  return new Int8Array(buffer(name, n), 0, n);
}

/** A scratch Uint32Array of `n` words (contents undefined). */
export function scratchU32(name: string, n: number): Uint32Array {
  return new Uint32Array(buffer(name, 4 * n), 0, n);
}

/** A scratch Uint8Array of `n` bytes (contents undefined). */
export function scratchU8(name: string, n: number): Uint8Array {
  return new Uint8Array(buffer(name, n), 0, n);
}

/** A scratch Uint16Array of `n` elements (contents undefined). */
export function scratchU16(name: string, n: number): Uint16Array {
  return new Uint16Array(buffer(name, 2 * n), 0, n);
}

/** A scratch Int32Array of `n` elements (contents undefined). */
export function scratchI32(name: string, n: number): Int32Array {
  return new Int32Array(buffer(name, 4 * n), 0, n);
}

/** A scratch Float32Array of `n` elements (contents undefined). */
export function scratchF32(name: string, n: number): Float32Array {
  return new Float32Array(buffer(name, 4 * n), 0, n);
}
