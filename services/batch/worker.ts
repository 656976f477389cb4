/**
 * The batch worker loop: pulls lines from the durable consumer, runs each through a
 * `Backend`, stores its result (first result per key wins) and only then acknowledges the
 * line. While a line runs the worker tells JetStream it is still working, so a slow line is
 * not redelivered; a line whose worker died is redelivered after `ack_wait` and finds its
 * result already stored, or runs again. A sweep every `sweepMs` moves batches forward
 * (counts, finalize, cancel) whatever worker or gateway crashed in between.
 * @module
 */
import type { JsMsg } from "@nats-io/jetstream";
import type { BatchState, BatchStore, LineTask } from "../../shared/batch/mod.ts";
import { TERMINAL_STATUSES } from "../../shared/batch/mod.ts";
import type { KvSettings } from "../../shared/handoff/contract.ts";
import type { Backend } from "../gateway/backend.ts";
import { executeLine } from "./executor.ts";

const SWEEP_TIMEOUT_MS = 10_000;

export const DEFAULT_WORKER_OPTIONS = {
  /** Lines run at once by this worker. */
  concurrency: 4,
  /** How often open batches are reconciled. */
  sweepMs: 1000,
  /** Largest wait for one pull request. */
  fetchExpiresMs: 1000,
  maxTokensLimit: 4096,
  /** Deliveries of a line that failed with 503/504 before its error is recorded. */
  maxAttempts: 5,
  /** First retry delay of such a line; doubled each time. */
  retryBaseMs: 1000,
};

/** HTTP statuses of failures worth another try: `unavailable`, `timeout`. */
const RETRYABLE = [503, 504];

export interface WorkerOptions extends Partial<typeof DEFAULT_WORKER_OPTIONS> {
  store: BatchStore;
  backend: Backend;
  kvDefaults: KvSettings;
  log?: (msg: string) => void;
}

export interface WorkerStats {
  /** Lines acknowledged by this worker. */
  acked: number;
  /** Lines run through the backend (a redelivered line with a stored result is not run again). */
  executed: number;
  /** Deliveries that found the result already stored. */
  alreadyStored: number;
  /** Lines skipped because their batch is cancelled or gone. */
  skipped: number;
  /** Lines put back for another try after a 503/504. */
  retried: number;
}

export class BatchWorker {
  readonly stats: WorkerStats = { acked: 0, executed: 0, alreadyStored: 0, skipped: 0, retried: 0 };
  #o: WorkerOptions & typeof DEFAULT_WORKER_OPTIONS;
  #abort = new AbortController();
  #loops: Promise<void>[] = [];
  #batchCache = new Map<string, { state: BatchState | null; at: number }>();
  #dirty = new Set<string>();

  constructor(opts: WorkerOptions) {
    this.#o = { ...DEFAULT_WORKER_OPTIONS, ...opts };
  }

  start(): this {
    this.#loops.push(this.#pullLoop(), this.#sweepLoop());
    return this;
  }

  /** Stops pulling; lines in flight are abandoned unacknowledged (JetStream redelivers them). */
  async stop(): Promise<void> {
    this.#abort.abort();
    await Promise.all(this.#loops);
  }

  async #pullLoop(): Promise<void> {
    const signal = this.#abort.signal;
    const { store } = this.#o;
    while (!signal.aborted) {
      try {
        const consumer = await store.consumer();
        while (!signal.aborted) {
          const msgs = await consumer.fetch({
            max_messages: this.#o.concurrency,
            expires: this.#o.fetchExpiresMs,
          });
          const running: Promise<void>[] = [];
          for await (const m of msgs) running.push(this.#handle(m));
          await Promise.all(running);
        }
      } catch (err) {
        if (signal.aborted) break;
        this.#o.log?.(`pull failed, retrying: ${(err as Error).message}`);
        await sleep(250, signal);
      }
    }
  }

  async #sweepLoop(): Promise<void> {
    const signal = this.#abort.signal;
    const { store } = this.#o;
    while (!signal.aborted) {
      await sleep(this.#o.sweepMs, signal);
      if (signal.aborted) break;
      const sweep = async () => {
        const ids = new Set([...this.#dirty, ...await store.openBatches()]);
        this.#dirty.clear();
        for (const id of ids) {
          if (signal.aborted) break;
          await store.reconcile(id);
        }
      };
      try {
        // A sweep that hangs (a lost reply) must not stop the next ones; reconciles are CAS-safe.
        const limit = AbortSignal.any([signal, AbortSignal.timeout(SWEEP_TIMEOUT_MS)]);
        await Promise.race([sweep(), sleep(SWEEP_TIMEOUT_MS, limit)]);
      } catch (err) {
        if (!signal.aborted) this.#o.log?.(`sweep failed: ${(err as Error).message}`);
      }
    }
  }

  async #batch(id: string): Promise<BatchState | null> {
    const hit = this.#batchCache.get(id);
    if (hit && Date.now() - hit.at < 500) return hit.state;
    const state = await this.#o.store.getBatch(id);
    this.#batchCache.set(id, { state, at: Date.now() });
    return state;
  }

  async #handle(m: JsMsg): Promise<void> {
    const { store } = this.#o;
    const signal = this.#abort.signal;
    let task: LineTask;
    try {
      task = m.json<LineTask>();
    } catch {
      m.term(); // not ours to run: never redeliver garbage
      return;
    }
    // A timer must not throw: with the connection gone, ack_wait redelivers the line anyway.
    const beat = setInterval(() => {
      try {
        m.working();
      } catch { /* closed connection */ }
    }, Math.max(200, store.options.ackWaitMs / 3));
    try {
      const state = await this.#batch(task.batchId);
      const status = state?.batch.status;
      if (!state || status === "cancelling" || TERMINAL_STATUSES.includes(status!)) {
        this.stats.skipped++;
        await m.ackAck();
        return;
      }
      const key = await store.resultKey(task);
      let rec = await store.getResult(key);
      if (rec) this.stats.alreadyStored++;
      else {
        this.stats.executed++;
        rec = await executeLine(task, {
          backend: this.#o.backend,
          kvDefaults: this.#o.kvDefaults,
          batchKv: state.kv,
          maxTokensLimit: this.#o.maxTokensLimit,
          delivery: m.info.deliveryCount,
          signal,
        });
        const status = rec.response?.status_code ?? 0;
        if (RETRYABLE.includes(status) && m.info.deliveryCount < this.#o.maxAttempts) {
          // The cluster is not up (yet) or timed out: try the line again later rather than
          // record a failure; the last attempt's error goes to the error file.
          this.stats.retried++;
          m.nak(this.#o.retryBaseMs * 2 ** (m.info.deliveryCount - 1));
          return;
        }
      }
      // Stored (or the marker refreshed) before the ack: a crash here means redelivery, not loss.
      await store.putResult(key, rec);
      if (signal.aborted) return;
      await m.ackAck();
      this.stats.acked++;
      this.#dirty.add(task.batchId);
    } catch (err) {
      if (signal.aborted) return;
      this.#o.log?.(`line ${task.batchId}#${task.index} failed, will retry: ${(err as Error).message}`);
      try {
        m.nak(500);
      } catch { /* connection gone: ack_wait redelivers */ }
    } finally {
      clearInterval(beat);
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
