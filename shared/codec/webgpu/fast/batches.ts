/**
 * How a call's frames become GPU batches: consecutive frames while the batch's buffers stay
 * under a byte cap, and up to `inflight` batches on the device at once, so that one batch's
 * uploads (host copies on the JS thread) overlap another's GPU work and read-backs.
 * @module
 */

/**
 * Cuts `items` into runs of consecutive items: `parts` gives an item's additive sizes, `bytes`
 * the buffer bytes a run with those totals needs; a run holds one item at least.
 */
export function cutBatches<T>(
  items: T[],
  parts: (t: T) => number[],
  bytes: (totals: number[]) => number,
  cap: number,
): T[][] {
  const out: T[][] = [];
  let run: T[] = [], totals: number[] = [];
  for (const it of items) {
    const p = parts(it);
    const next = run.length === 0 ? p : totals.map((v, k) => v + p[k]);
    if (run.length > 0 && bytes(next) > cap) {
      out.push(run);
      run = [it], totals = p;
    } else run.push(it), totals = next;
  }
  if (run.length > 0) out.push(run);
  return out;
}

/**
 * Runs `job(0..count-1)` with at most `inflight` at once, in order of start; `started` runs once
 * the first jobs have begun (each job runs synchronously up to its first wait: its uploads and
 * first submission), so that CPU work can fill the wait.
 */
export async function inPool(
  count: number,
  inflight: number,
  job: (k: number) => Promise<void>,
  started: () => void,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await job(next++);
  };
  const workers = Array.from({ length: Math.max(1, Math.min(inflight, count)) }, worker);
  started();
  await Promise.all(workers);
}
