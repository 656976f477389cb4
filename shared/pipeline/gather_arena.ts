/**
 * Where a hand-off gathers the KVs eviction kept. Every evicted head's K and V rows are copied
 * into one reused buffer per encoder call instead of two fresh arrays a head: fresh memory costs
 * a page fault per 4 KiB touched, and a CUDA encoder page-locks the buffers it uploads from once
 * each (`HostRegistry`), which only pays when the buffer comes back. A job holds one arena from
 * its first evicted group to its end; arenas return to a small pool for the next request.
 * @module
 */

/** An arena: one growable fp32 buffer, handed out front to back from each `reserve`. */
export class GatherArena {
  #buf = new Float32Array(0);
  #used = 0;

  /** Makes room for `floats` values from the front; earlier views are dropped with the old buffer. */
  reserve(floats: number): void {
    this.#used = 0;
    if (this.#buf.length < floats) this.#buf = new Float32Array(floats);
  }

  /** The next `floats` values, a view into the buffer (reserve first). */
  take(floats: number): Float32Array {
    const end = this.#used + floats;
    if (end > this.#buf.length) {
      throw new RangeError(`gather arena: ${end} values past ${this.#buf.length} reserved`);
    }
    const view = this.#buf.subarray(this.#used, end);
    this.#used = end;
    return view;
  }

  get capacity(): number {
    return this.#buf.length;
  }
}

/** Arenas kept for reuse; past these, a released arena is left to the collector. */
const POOL_SIZE = 4;
/** A larger arena is not kept (one request's outsized prompt should not pin its memory). */
const KEEP_BYTES = 512 * 2 ** 20;
const pool: GatherArena[] = [];

export function acquireArena(): GatherArena {
  return pool.pop() ?? new GatherArena();
}

export function releaseArena(a: GatherArena): void {
  if (pool.length < POOL_SIZE && a.capacity * 4 <= KEEP_BYTES && !pool.includes(a)) pool.push(a);
}
