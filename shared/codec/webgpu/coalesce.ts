/**
 * Coalescing concurrent callers' frames into shared GPU batches. Each `encodeMany` call of
 * the GPU codec costs three submissions and read-backs however many frames it carries, so
 * concurrent requests that each call it queue on the one device, batch after batch. The
 * coalescer keeps at most one batch in flight: frames that arrive while it runs wait in one
 * first-in-first-out queue and go together in the next call, cut at `maxValues` values
 * (the batch encoder's own cap, `MAX_BATCH_VALUES`). Every batch takes at least the
 * oldest waiting frame, so no caller starves; a caller's frames may span batches when the
 * cap cuts them.
 *
 * What it knows: frames, their options and which caller they belong to. What it does not:
 * how frames are encoded (the inner encoder settles each frame on its own) or what to do
 * with a failed frame — each caller gets its frames' settled results back, in its order,
 * and decides (the compression service re-encodes such frames on the CPU).
 * @module
 */
import type { EncodeOptions, Tensor } from "../types.ts";
import { MAX_BATCH_VALUES } from "./batch.ts";

/** Encodes a batch; one settled result per frame, in order (a failed frame fails alone). */
export type SettledBatchEncoder<T> = (
  frames: Tensor[],
  opts: EncodeOptions[],
) => Promise<PromiseSettledResult<T>[]>;

/** Options of {@linkcode coalesce}. */
export interface CoalesceOptions {
  /** Values of one batch at most (a single larger frame still goes, alone). Default `MAX_BATCH_VALUES`. */
  maxValues?: number;
}

/** One caller's frames in flight. */
interface Caller<T> {
  results: PromiseSettledResult<T>[];
  pending: number;
  resolve: (r: PromiseSettledResult<T>[]) => void;
}

/** A waiting frame: whose it is and where its result goes. */
interface Queued<T> {
  caller: Caller<T>;
  index: number;
  frame: Tensor;
  opts: EncodeOptions;
}

/**
 * Wraps a batch encoder so that concurrent calls share batches: one batch in flight, the
 * frames arriving meanwhile go together in the next. Each call resolves with exactly its
 * own frames' settled results, in its order; a failing frame or batch never rejects the call
 * (only mismatched `frames` and `opts` lengths do, with a `TypeError`).
 *
 * @example
 * ```ts
 * import { coalesce } from "./coalesce.ts";
 * const calls: number[] = [];
 * const enc = coalesce<number>(async (frames) => {
 *   calls.push(frames.length);
 *   return frames.map((f) => ({ status: "fulfilled", value: f.data.length }));
 * });
 * const t = { dtype: "f32" as const, shape: [2, 2], data: new Float32Array(4) };
 * const o = { codec: "kvsort" as const };
 * await Promise.all([enc([t], [o]), enc([t, t], [o, o]), enc([t], [o])]);
 * console.log(calls); // [1, 3]: the first call alone, the two that waited together
 * ```
 */
export function coalesce<T>(
  inner: SettledBatchEncoder<T>,
  options: CoalesceOptions = {},
): (frames: Tensor[], opts: EncodeOptions[]) => Promise<PromiseSettledResult<T>[]> {
  const maxValues = options.maxValues ?? MAX_BATCH_VALUES;
  if (!(maxValues >= 1)) throw new RangeError(`maxValues must be at least 1, got ${maxValues}`);
  const queue: Queued<T>[] = [];
  let busy = false;

  const settle = (q: Queued<T>, r: PromiseSettledResult<T>) => {
    q.caller.results[q.index] = r;
    if (--q.caller.pending === 0) q.caller.resolve(q.caller.results);
  };

  /** Runs batches until the queue is empty; only one runs at a time. */
  const drain = async () => {
    if (busy) return;
    busy = true;
    try {
      while (queue.length > 0) {
        let n = 1, values = queue[0].frame.data.length;
        while (n < queue.length && values + queue[n].frame.data.length <= maxValues) {
          values += queue[n++].frame.data.length;
        }
        const batch = queue.splice(0, n);
        let res: PromiseSettledResult<T>[];
        try {
          res = await inner(batch.map((q) => q.frame), batch.map((q) => q.opts));
          if (res.length !== batch.length) {
            throw new Error(`batch encoder gave ${res.length} results for ${batch.length} frames`);
          }
        } catch (reason) {
          res = batch.map(() => ({ status: "rejected", reason }));
        }
        batch.forEach((q, i) => settle(q, res[i]));
      }
    } finally {
      busy = false;
    }
  };

  return function encodeCoalesced(frames, opts) {
    if (opts.length !== frames.length) {
      return Promise.reject(new TypeError(`${frames.length} frames but ${opts.length} option sets`));
    }
    if (frames.length === 0) return Promise.resolve([]);
    return new Promise((resolve) => {
      const caller: Caller<T> = { results: new Array(frames.length), pending: frames.length, resolve };
      frames.forEach((frame, index) => queue.push({ caller, index, frame, opts: opts[index] }));
      drain();
    });
  };
}
