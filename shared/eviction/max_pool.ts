/**
 * Max-pool smoothing of one row of the eviction metric over positions.
 * @module
 */

/**
 * Returns `out[p] = max(row[p - floor(k/2)] .. row[p - floor(k/2) + k - 1])`, the window
 * clipped to the row (SnapKV's `max_pool1d(kernel=k, padding=k//2, stride=1)` for odd k).
 * `k` of 0 or 1 returns a copy. Runs in O(n) with a monotone deque.
 *
 * @example
 * ```ts
 * import { maxPool1d } from "./max_pool.ts";
 * maxPool1d(new Float32Array([0, 5, 0, 0, 0]), 3); // Float32Array [5, 5, 5, 0, 0]
 * ```
 */
export function maxPool1d(row: Float32Array, k: number): Float32Array {
  if (!Number.isInteger(k) || k < 0) throw new RangeError(`maxPool1d: kernel ${k} is not an integer >= 0`);
  const n = row.length;
  const out = new Float32Array(n);
  if (k <= 1) {
    out.set(row);
    return out;
  }
  const left = k >> 1;
  const right = k - 1 - left;
  // deque of indices whose values decrease from head to tail
  const dq = new Int32Array(n);
  let head = 0;
  let tail = 0;
  let next = 0; // next index to push
  for (let p = 0; p < n; p++) {
    const hiIdx = Math.min(n - 1, p + right);
    while (next <= hiIdx) {
      const v = row[next];
      while (tail > head && !(row[dq[tail - 1]] > v)) tail--;
      dq[tail++] = next++;
    }
    while (dq[head] < p - left) head++;
    out[p] = row[dq[head]];
  }
  return out;
}
