import type { FastTiming } from "./context.ts";

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

/** One GPU batch: its frames, values and GPU time. */
export interface FastBatchInfo {
  frames: number;
  values: number;
  timing: FastTiming;
}

/** Where a frame's result came from. */
export interface FastFrameInfo {
  backend: "webgpu" | "cpu";
  /** Why the CPU took it. */
  fallback?: string;
}

/** Per-call state every batch settles into: one result and one info per frame. */
export interface BatchLedger<R> {
  results: PromiseSettledResult<R>[];
  info: FastFrameInfo[];
  /** Sends frame `i` to the CPU codec, saying why. */
  toCpu(i: number, why: string): void;
  /** Runs CPU work queued so far (between and after batches). */
  runCpu(): void;
}

/**
 * Runs `cut`'s batches through `runBatch`, `inflight` at a time, settling each item (`i` is its
 * frame): a GPU result is fulfilled, a string sends the frame to the CPU, a failed batch rejects
 * all its frames. Returns the batches that ran, in order.
 */
export async function runBatches<T extends { i: number }, R>(
  cut: T[][],
  ledger: BatchLedger<R>,
  opts: {
    inflight: number;
    values: (item: T) => number;
    runBatch: (batch: T[]) => Promise<{ out: (R | string)[]; timing: FastTiming }>;
  },
): Promise<FastBatchInfo[]> {
  const { results, info, toCpu, runCpu } = ledger;
  const done: FastBatchInfo[] = new Array(cut.length);
  await inPool(cut.length, opts.inflight, async (k) => {
    const batch = cut[k];
    try {
      const { out, timing } = await opts.runBatch(batch);
      batch.forEach((it, j) => {
        const r = out[j];
        if (typeof r === "string") toCpu(it.i, r);
        else {
          info[it.i] = { backend: "webgpu" };
          results[it.i] = { status: "fulfilled", value: r };
        }
      });
      done[k] = { frames: batch.length, values: batch.reduce((s, it) => s + opts.values(it), 0), timing };
    } catch (reason) {
      for (const it of batch) {
        info[it.i] = { backend: "webgpu" };
        results[it.i] = { status: "rejected", reason };
      }
    }
    runCpu();
  }, runCpu);
  runCpu();
  return done.filter(Boolean);
}
