/**
 * Output buffers for `decodeManyInto`, reused across calls: a buffer given back is taken again
 * by a later call of about its size, so its page-locking (done once per buffer by the codec's
 * registry) and its pages (faulted in once) are paid once, and the values go there by DMA.
 * Buffers past `maxIdleBytes` are dropped here; the registry keeps a dropped buffer's registration
 * (and so the buffer) until it needs the room (pinned.ts).
 * @module
 */

/** Capacities are whole MiB of f32, so nearby sizes share buffers. */
const GRAIN = 2 ** 18;

export class OutputPool {
  #free: Float32Array[] = [];
  idleBytes = 0;

  constructor(readonly maxIdleBytes = 4 * 2 ** 30) {}

  /** A buffer of at least `n` values: the smallest free one not over twice `n`, else a new one. */
  take(n: number): Float32Array {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`OutputPool.take: ${n} values`);
    let best = -1;
    for (const [k, b] of this.#free.entries()) {
      if (
        b.length >= n && b.length <= 2 * Math.max(n, GRAIN) &&
        (best < 0 || b.length < this.#free[best].length)
      ) {
        best = k;
      }
    }
    if (best < 0) return new Float32Array(Math.max(GRAIN, Math.ceil(n / GRAIN) * GRAIN));
    const [b] = this.#free.splice(best, 1);
    this.idleBytes -= b.byteLength;
    return b;
  }

  /** Takes `buf` back (nothing may use it afterwards); dropped when the pool is full. */
  give(buf: Float32Array): void {
    if (this.#free.includes(buf)) throw new Error("OutputPool.give: the buffer is already in the pool");
    if (this.idleBytes + buf.byteLength > this.maxIdleBytes) return;
    this.#free.push(buf);
    this.idleBytes += buf.byteLength;
  }

  /** Free buffers now. */
  get size(): number {
    return this.#free.length;
  }
}

/** Views of `ns[i]` values one after another from `buf`'s head (a `RangeError` past its end). */
export function carve(buf: Float32Array, ns: number[]): Float32Array[] {
  const total = ns.reduce((a, b) => a + b, 0);
  if (total > buf.length) throw new RangeError(`carve: ${total} values into a buffer of ${buf.length}`);
  let at = 0;
  return ns.map((n) => buf.subarray(at, at += n));
}
