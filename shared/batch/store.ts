/**
 * Batch jobs on JetStream. Everything durable lives in the server:
 *
 * - files: bytes in the Object Store `kvrelay_files`, the OpenAI `file` object in the KV
 *   bucket `kvrelay_files` (same id);
 * - batch state: KV bucket `kvrelay_batches`, one key per batch, changed only by
 *   compare-and-set so gateways and workers never overwrite each other;
 * - lines: the work-queue stream `KVRELAY_BATCH_LINES` (subject per batch), read by the
 *   durable pull consumer `kvrelay-batch-workers`; published with a msg-id per line so a
 *   retried publish is not a second copy;
 * - results: KV bucket `kvrelay_batch_results`, key `<batch>.r.<hash(custom_id)>` written
 *   with `create` (fails if present), so a redelivered line never yields a second result;
 *   failed lines also get a marker `<batch>.e.<hash>`. `request_counts` are counted from
 *   these keys, never incremented, so they cannot drift after a crash.
 *
 * What it does not know: how a line is run (services/batch/executor.ts does that).
 * @module
 */
import { millis, nanos, type NatsConnection, nuid } from "@nats-io/nats-core";
import {
  AckPolicy,
  type Consumer,
  type ConsumerInfo,
  DeliverPolicy,
  jetstream,
  type JetStreamClient,
  type JetStreamManager,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { type ObjectStore, Objm } from "@nats-io/obj";
import { KvrelayError } from "../errors.ts";
import { lineKey, parseBatchInput } from "./jsonl.ts";
import {
  type BatchObject,
  type BatchState,
  type FileObject,
  isSuccess,
  type LineTask,
  type RequestCounts,
  type ResultRecord,
  type StoredFile,
  TERMINAL_STATUSES,
} from "./types.ts";

export const FILES_BUCKET = "kvrelay_files";
export const BATCHES_BUCKET = "kvrelay_batches";
export const RESULTS_BUCKET = "kvrelay_batch_results";
export const LINES_STREAM = "KVRELAY_BATCH_LINES";
export const LINES_SUBJECT = "kvrelay.batch.line";
export const WORKERS_CONSUMER = "kvrelay-batch-workers";

export const DEFAULT_BATCH_STORE_OPTIONS = {
  /** How long a delivered line may go unacknowledged before it is redelivered. */
  ackWaitMs: 30_000,
  /** Lines handed out to workers and not yet acknowledged, all workers together. */
  maxAckPending: 1000,
  /** A `finalizing` (or `validating`) batch untouched this long is taken over by another worker. */
  staleFinalizeMs: 30_000,
  /**
   * How long line results are kept (the output files keep them after that). Longer than a
   * batch's 24 h completion window, so a running batch never loses one.
   */
  resultsTtlMs: 7 * 24 * 3600 * 1000,
  /** How long a file (upload or output) lives; 0: until deleted. */
  fileTtlMs: 30 * 24 * 3600 * 1000,
  /** Bytes of live uploads one tenant may hold (TenantStore); 0: no limit. */
  uploadQuotaBytes: 1024 * 1024 * 1024,
};
export type BatchStoreOptions = Partial<typeof DEFAULT_BATCH_STORE_OPTIONS>;

/** Most request lines in one batch (OpenAI's limit). */
export const MAX_BATCH_LINES = 50_000;

const now = () => Math.floor(Date.now() / 1000);
const enc = new TextEncoder();

export interface CreateBatchParams {
  inputFileId: string;
  endpoint: string;
  completionWindow?: string;
  metadata?: Record<string, string> | null;
  /** Batch-level `kv_compression`, already validated by the caller. */
  kv?: unknown;
  /** The tenant creating it: the input file must be its own. Absent: any file (internal use). */
  owner?: string;
}

/** A live file and its tenant. */
export interface FileRecord {
  file: FileObject;
  owner: string;
}

/** The NATS server (or its account) runs no JetStream: batch jobs cannot be stored. */
export class JetStreamMissing extends KvrelayError {
  constructor(server: string, cause?: unknown) {
    super(
      "unavailable",
      `JetStream is not enabled on the NATS server at ${server}: batch jobs are off. ` +
        "Run nats-server with -js (or a `jetstream {}` block, and `jetstream: enabled` for the account)",
      { cause },
    );
    this.name = "JetStreamMissing";
  }
}

export class BatchStore {
  readonly nc: NatsConnection;
  readonly options: typeof DEFAULT_BATCH_STORE_OPTIONS;
  /** Lines this store put back in the queue after finding them lost (see `reconcile`). */
  lostLinesRepublished = 0;
  #js: JetStreamClient;
  #jsm: JetStreamManager;
  #files: ObjectStore;
  #fileMeta: KV;
  #batches: KV;
  #results: KV;

  private constructor(
    nc: NatsConnection,
    options: typeof DEFAULT_BATCH_STORE_OPTIONS,
    parts: { jsm: JetStreamManager; files: ObjectStore; fileMeta: KV; batches: KV; results: KV },
  ) {
    this.nc = nc;
    this.options = options;
    this.#js = jetstream(nc);
    this.#jsm = parts.jsm;
    this.#files = parts.files;
    this.#fileMeta = parts.fileMeta;
    this.#batches = parts.batches;
    this.#results = parts.results;
  }

  /**
   * Creates (or binds to) the buckets, the stream and the durable consumer. A server (or
   * account) without JetStream is a `JetStreamMissing`.
   */
  static async open(nc: NatsConnection, opts: BatchStoreOptions = {}): Promise<BatchStore> {
    const options = { ...DEFAULT_BATCH_STORE_OPTIONS, ...opts };
    let jsm: JetStreamManager;
    try {
      jsm = await jetstreamManager(nc);
    } catch (err) {
      if (err instanceof Error && /JetStreamNotEnabled|not enabled/i.test(`${err.name} ${err.message}`)) {
        throw new JetStreamMissing(nc.getServer(), err);
      }
      throw err;
    }
    const kvm = new Kvm(nc);
    const [files, fileMeta, batches, results] = await Promise.all([
      new Objm(nc).create(FILES_BUCKET, { storage: StorageType.File }),
      kvm.create(FILES_BUCKET, { history: 1, storage: StorageType.File }),
      kvm.create(BATCHES_BUCKET, { history: 1, storage: StorageType.File }),
      kvm.create(RESULTS_BUCKET, { history: 1, storage: StorageType.File, ttl: options.resultsTtlMs }),
    ]);
    try {
      await jsm.streams.info(LINES_STREAM);
    } catch {
      await jsm.streams.add({
        name: LINES_STREAM,
        subjects: [`${LINES_SUBJECT}.>`],
        retention: RetentionPolicy.Workqueue,
        storage: StorageType.File,
        duplicate_window: nanos(120_000),
      });
    }
    // The durable consumer is shared: the first opener creates it; later openers change its
    // ack wait only when they ask for one, and otherwise adopt the one it has.
    const consumer = {
      durable_name: WORKERS_CONSUMER,
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(options.ackWaitMs),
      max_ack_pending: options.maxAckPending,
      filter_subject: `${LINES_SUBJECT}.>`,
    };
    let existing: ConsumerInfo | undefined;
    try {
      existing = await jsm.consumers.info(LINES_STREAM, WORKERS_CONSUMER);
    } catch { /* not there yet */ }
    if (!existing) {
      await jsm.consumers.add(LINES_STREAM, consumer);
    } else if (opts.ackWaitMs !== undefined && existing.config.ack_wait !== consumer.ack_wait) {
      await jsm.consumers.update(LINES_STREAM, WORKERS_CONSUMER, { ack_wait: consumer.ack_wait });
    } else if (existing.config.ack_wait) {
      options.ackWaitMs = millis(existing.config.ack_wait);
    }
    return new BatchStore(nc, options, { jsm, files, fileMeta, batches, results });
  }

  /** The durable pull consumer every worker shares. */
  consumer(): Promise<Consumer> {
    return this.#js.consumers.get(LINES_STREAM, WORKERS_CONSUMER);
  }

  // ---------------------------------------------------------------- files

  async putFile(
    filename: string,
    purpose: string,
    bytes: Uint8Array,
    opts: { owner?: string } = {},
  ): Promise<FileObject> {
    const created = now();
    const ttl = this.options.fileTtlMs;
    const file: FileObject = {
      id: `file-${nuid.next()}`,
      object: "file",
      bytes: bytes.length,
      created_at: created,
      filename,
      purpose,
      status: "processed",
      status_details: null,
      expires_at: ttl > 0 ? created + Math.ceil(ttl / 1000) : null,
    };
    await this.#files.putBlob({ name: file.id }, bytes);
    await this.#fileMeta.put(
      file.id,
      JSON.stringify({ ...file, owner: opts.owner ?? "" } satisfies StoredFile),
    );
    return file;
  }

  /**
   * Deletes a live file (its record and its bytes); false when there is none. The input of a
   * batch that is still running is refused (400): its lines and results are read from it.
   */
  async deleteFile(id: string): Promise<boolean> {
    if (!(await this.fileRecord(id))) return false;
    const running = (await this.listBatchStates()).find((s) =>
      s.batch.input_file_id === id && !TERMINAL_STATUSES.includes(s.batch.status)
    );
    if (running) {
      throw new KvrelayError(
        "bad_request",
        `file '${id}' is the input of batch '${running.batch.id}', which is ${running.batch.status}; cancel it first`,
      );
    }
    await this.#deleteFile(id);
    return true;
  }

  async #deleteFile(id: string): Promise<void> {
    await this.#fileMeta.delete(id);
    await this.#files.delete(id);
  }

  /** A live file and its owner; null when unknown, malformed or expired (an expired one is deleted). */
  async fileRecord(id: string): Promise<FileRecord | null> {
    if (!validId(id)) return null;
    const e = await this.#fileMeta.get(id);
    if (!e || e.operation !== "PUT") return null;
    const { owner = "", ...file } = e.json<StoredFile>();
    if (file.expires_at !== null && file.expires_at <= now()) {
      await this.#deleteFile(id).catch(() => {});
      return null;
    }
    return { file, owner };
  }

  async getFile(id: string): Promise<FileObject | null> {
    return (await this.fileRecord(id))?.file ?? null;
  }

  async fileContent(id: string): Promise<Uint8Array | null> {
    if (!(await this.getFile(id))) return null;
    return await this.#files.getBlob(id);
  }

  /** Every live file with its owner (expired ones are deleted on the way). */
  async fileRecords(): Promise<FileRecord[]> {
    const prefix = `$KV.${FILES_BUCKET}.`;
    const info = await this.#jsm.streams.info(`KV_${FILES_BUCKET}`, { subjects_filter: `${prefix}>` });
    const ids = Object.keys(info.state.subjects ?? {}).map((s) => s.slice(prefix.length));
    const out: FileRecord[] = [];
    for (let i = 0; i < ids.length; i += 64) {
      const got = await Promise.all(ids.slice(i, i + 64).map((id) => this.fileRecord(id)));
      for (const r of got) if (r) out.push(r);
    }
    return out;
  }

  // ---------------------------------------------------------------- batches

  /**
   * Reads the input file, publishes one message per line and moves the batch to
   * `in_progress`. Lines that fail validation are published too, carrying their error.
   */
  async createBatch(p: CreateBatchParams): Promise<BatchObject> {
    const rec = await this.fileRecord(p.inputFileId);
    if (!rec || (p.owner !== undefined && rec.owner !== p.owner)) {
      throw new KvrelayError("not_found", `no file '${p.inputFileId}'`, { param: "input_file_id" });
    }
    const file = rec.file;
    if (file.purpose !== "batch") {
      throw new KvrelayError("bad_request", `file '${file.id}' has purpose '${file.purpose}', not 'batch'`, {
        param: "input_file_id",
      });
    }
    const text = new TextDecoder().decode((await this.#files.getBlob(file.id)) ?? new Uint8Array(0));
    const id = `batch_${nuid.next()}`;
    const tasks = parseBatchInput(id, text);
    if (tasks.length > MAX_BATCH_LINES) {
      throw new KvrelayError(
        "bad_request",
        `file '${file.id}' has ${tasks.length} lines; at most ${MAX_BATCH_LINES}`,
        {
          param: "input_file_id",
        },
      );
    }
    if (!tasks.length) {
      throw new KvrelayError("bad_request", `file '${file.id}' has no request lines`, {
        param: "input_file_id",
      });
    }
    const created = now();
    const batch: BatchObject = {
      id,
      object: "batch",
      endpoint: p.endpoint,
      errors: null,
      input_file_id: file.id,
      completion_window: p.completionWindow ?? "24h",
      status: "validating",
      output_file_id: null,
      error_file_id: null,
      created_at: created,
      in_progress_at: null,
      expires_at: created + 24 * 3600,
      finalizing_at: null,
      completed_at: null,
      failed_at: null,
      expired_at: null,
      cancelling_at: null,
      cancelled_at: null,
      request_counts: { total: tasks.length, completed: 0, failed: 0 },
      metadata: p.metadata ?? null,
    };
    await this.#batches.create(
      id,
      JSON.stringify({ batch, kv: p.kv, owner: p.owner ?? "" } satisfies BatchState),
    );
    await this.#publish(id, tasks, { dedupe: true });
    const s = await this.#mutate(id, (s) => {
      if (s.batch.status !== "validating") return null;
      s.batch.status = "in_progress";
      s.batch.in_progress_at = now();
      return s;
    });
    return s!.batch;
  }

  /**
   * Publishes `tasks` on the batch's subject. A line too large for one message goes out as
   * its error instead. `dedupe` gives each line its msg-id (a retried publish within the
   * stream's duplicate window is dropped); `missingOnly` skips lines that have a result.
   */
  async #publish(batchId: string, tasks: LineTask[], opts: { dedupe: boolean; missingOnly?: boolean }) {
    const subject = `${LINES_SUBJECT}.${batchId}`;
    const limit = (this.nc.info?.max_payload ?? 1024 * 1024) - 4096;
    let published = 0;
    for (let i = 0; i < tasks.length; i += 256) {
      await Promise.all(
        tasks.slice(i, i + 256).map(async (t) => {
          if (opts.missingOnly && await this.getResult(await this.resultKey(t))) return;
          let data = enc.encode(JSON.stringify(t));
          if (data.length > limit) {
            const error = {
              code: "line_too_large",
              message: `line ${t.index + 1}: ${data.length} bytes; at most ${limit}`,
            };
            data = enc.encode(
              JSON.stringify({ batchId, index: t.index, customId: t.customId, error } satisfies LineTask),
            );
          }
          await this.#js.publish(subject, data, opts.dedupe ? { msgID: `${batchId}.${t.index}` } : undefined);
          published++;
        }),
      );
    }
    return published;
  }

  /**
   * Puts back the lines of a batch that have neither a result nor a message in the work
   * queue: lines a gateway died before publishing, or whose ack outlived their result in a
   * host crash (JetStream syncs to disk on an interval). Results are idempotent, so a line
   * put back twice still yields one result.
   */
  async #republishMissing(b: BatchObject, dedupe: boolean): Promise<number> {
    const bytes = await this.#files.getBlob(b.input_file_id);
    if (!bytes) return 0;
    const tasks = parseBatchInput(b.id, new TextDecoder().decode(bytes));
    return await this.#publish(b.id, tasks, { dedupe, missingOnly: true });
  }

  /** Lines of a batch still in the work queue (delivered or not, until acknowledged). */
  async #queued(batchId: string): Promise<number> {
    const subject = `${LINES_SUBJECT}.${batchId}`;
    const info = await this.#jsm.streams.info(LINES_STREAM, { subjects_filter: subject });
    return info.state.subjects?.[subject] ?? 0;
  }

  async getBatch(id: string): Promise<BatchState | null> {
    if (!validId(id)) return null;
    const e = await this.#batches.get(id);
    return e && e.operation === "PUT" ? e.json<BatchState>() : null;
  }

  /** Every batch, newest first. */
  async listBatches(): Promise<BatchObject[]> {
    return (await this.listBatchStates()).map((s) => s.batch);
  }

  /** Every batch with its settings and owner, newest first. */
  async listBatchStates(): Promise<BatchState[]> {
    const ids = await this.#batchIds();
    const all = await Promise.all(ids.map((id) => this.getBatch(id)));
    return all.filter((s): s is BatchState => s !== null).sort((a, b) =>
      b.batch.created_at - a.batch.created_at || (a.batch.id < b.batch.id ? 1 : -1)
    );
  }

  /** Marks the batch `cancelling`; workers stop starting its lines and the next reconcile finalizes it. */
  async cancel(id: string): Promise<BatchObject | null> {
    if (!validId(id)) return null;
    const s = await this.#mutate(id, (s) => {
      if (s.batch.status !== "in_progress" && s.batch.status !== "validating") return null;
      s.batch.status = "cancelling";
      s.batch.cancelling_at = now();
      return s;
    });
    return s?.batch ?? null;
  }

  /**
   * Every batch id, from the bucket stream's subjects. (`KV.keys()` runs an ordered
   * consumer that was seen to stall while the bucket was being written.)
   */
  async #batchIds(): Promise<string[]> {
    const prefix = `$KV.${BATCHES_BUCKET}.`;
    const info = await this.#jsm.streams.info(`KV_${BATCHES_BUCKET}`, { subjects_filter: `${prefix}>` });
    return Object.keys(info.state.subjects ?? {}).map((s) => s.slice(prefix.length));
  }

  /** Compare-and-set loop on one batch; `fn` returns null to leave it as it is. */
  async #mutate(id: string, fn: (s: BatchState) => BatchState | null): Promise<BatchState | null> {
    let last: unknown;
    for (let attempt = 0; attempt < 50; attempt++) {
      const e = await this.#batches.get(id);
      if (!e || e.operation !== "PUT") return null;
      const next = fn(e.json<BatchState>());
      if (!next) return e.json<BatchState>();
      try {
        await this.#batches.update(id, JSON.stringify(next), e.revision);
        return next;
      } catch (err) {
        last = err; // someone else changed it: read again
        await new Promise((r) => setTimeout(r, 5 + Math.random() * 20));
      }
    }
    throw new KvrelayError("internal", `batch ${id}: too many concurrent updates`, { cause: last });
  }

  // ---------------------------------------------------------------- results

  async resultKey(task: LineTask): Promise<string> {
    return `${task.batchId}.r.${await lineKey(task)}`;
  }

  async getResult(key: string): Promise<ResultRecord | null> {
    const e = await this.#results.get(key);
    return e && e.operation === "PUT" ? e.json<ResultRecord>() : null;
  }

  /**
   * Stores a line's result unless one is there already, and returns the one that is stored
   * (the first writer wins). Also writes the failure marker for a failed line.
   */
  async putResult(key: string, rec: ResultRecord): Promise<ResultRecord> {
    let stored = rec;
    try {
      await this.#results.create(key, JSON.stringify(rec));
    } catch (err) {
      const existing = await this.getResult(key);
      if (!existing) throw err;
      stored = existing;
    }
    if (!isSuccess(stored)) {
      try {
        await this.#results.create(key.replace(".r.", ".e."), "1");
      } catch { /* already marked */ }
    }
    return stored;
  }

  /** Counts from the stored results: a count of keys, so it is right after any crash. */
  async counts(batchId: string, total: number): Promise<RequestCounts> {
    const [done, failed] = await Promise.all([
      this.#countKeys(`${batchId}.r.>`),
      this.#countKeys(`${batchId}.e.>`),
    ]);
    return { total, completed: done - failed, failed };
  }

  async #countKeys(filter: string): Promise<number> {
    const stream = `KV_${RESULTS_BUCKET}`;
    const ci = await this.#jsm.consumers.add(stream, {
      ack_policy: AckPolicy.None,
      deliver_policy: DeliverPolicy.All,
      filter_subject: `$KV.${RESULTS_BUCKET}.${filter}`,
      inactive_threshold: nanos(10_000),
      mem_storage: true,
    });
    this.#jsm.consumers.delete(stream, ci.name).catch(() => {});
    return ci.num_pending;
  }

  /** All stored results of a batch, in input order. */
  async results(batchId: string): Promise<ResultRecord[]> {
    // The keys follow from the input file: read them directly rather than list the bucket.
    const s = await this.getBatch(batchId);
    const bytes = s && await this.#files.getBlob(s.batch.input_file_id);
    if (!bytes) return [];
    const tasks = parseBatchInput(batchId, new TextDecoder().decode(bytes));
    const out: ResultRecord[] = [];
    for (let i = 0; i < tasks.length; i += 64) {
      const got = await Promise.all(
        tasks.slice(i, i + 64).map(async (t) => this.getResult(await this.resultKey(t))),
      );
      for (const r of got) if (r) out.push(r);
    }
    return out.sort((a, b) => a.index - b.index);
  }

  // ---------------------------------------------------------------- progress

  /**
   * Brings one batch forward: refreshes `request_counts`, and when every line has a result
   * (or the batch is cancelling) writes the output and error files and ends it. Safe to
   * call from any number of workers at once.
   */
  async reconcile(batchId: string): Promise<BatchObject | null> {
    const s = await this.getBatch(batchId);
    if (!s) return null;
    const b = s.batch;
    if (TERMINAL_STATUSES.includes(b.status)) return b;
    if (b.status === "validating") {
      // The creating gateway died while publishing: finish its job.
      if (Date.now() / 1000 - b.created_at < this.options.staleFinalizeMs / 1000) return b;
      await this.#republishMissing(b, true);
      return (await this.#mutate(batchId, (s) => {
        if (s.batch.status !== "validating") return null;
        s.batch.status = "in_progress";
        s.batch.in_progress_at = now();
        return s;
      }))?.batch ?? null;
    }
    if (b.status === "cancelling") {
      await this.#jsm.streams.purge(LINES_STREAM, { filter: `${LINES_SUBJECT}.${batchId}` }).catch(() => {});
      return await this.#finalize(batchId, "cancelled");
    }
    if (b.status === "finalizing") {
      const since = Date.now() / 1000 - (b.finalizing_at ?? 0);
      return since * 1000 >= this.options.staleFinalizeMs ? await this.#finalize(batchId, "completed") : b;
    }
    // Queue first, counts second: a line leaves the queue only after its result is stored,
    // so an empty queue with results missing means lines were lost, not in flight.
    const queued = await this.#queued(batchId);
    const counts = await this.counts(batchId, b.request_counts.total);
    const done = counts.completed + counts.failed >= counts.total;
    if (!done && queued === 0) {
      const n = await this.#republishMissing(b, false);
      if (n) this.lostLinesRepublished += n;
    }
    let won = false;
    const next = await this.#mutate(batchId, (s) => {
      if (s.batch.status !== "in_progress") return null;
      const c = s.batch.request_counts;
      if (!done && c.completed === counts.completed && c.failed === counts.failed) return null;
      s.batch.request_counts = counts;
      if (done) {
        s.batch.status = "finalizing";
        s.batch.finalizing_at = now();
        won = true;
      }
      return s;
    });
    return won ? await this.#finalize(batchId, "completed") : next?.batch ?? null;
  }

  async #finalize(batchId: string, status: "completed" | "cancelled"): Promise<BatchObject | null> {
    const s = await this.getBatch(batchId);
    if (!s) return null;
    const results = await this.results(batchId);
    const strip = ({ index: _i, delivery: _d, ...r }: ResultRecord) => JSON.stringify(r);
    const ok = results.filter(isSuccess);
    const bad = results.filter((r) => !isSuccess(r));
    // Fresh file ids: if another worker finalizes the same batch at once, the loser's files
    // are deleted and the winner's stay, never a mix of the two.
    const owner = { owner: s.owner ?? "" };
    const out = await this.putFile(
      `${batchId}_output.jsonl`,
      "batch_output",
      enc.encode(ok.map((r) => strip(r) + "\n").join("")),
      owner,
    );
    const err = bad.length
      ? await this.putFile(
        `${batchId}_error.jsonl`,
        "batch_output",
        enc.encode(bad.map((r) => strip(r) + "\n").join("")),
        owner,
      )
      : null;
    let won = false;
    const next = await this.#mutate(batchId, (s) => {
      if (TERMINAL_STATUSES.includes(s.batch.status)) return null;
      won = true;
      s.batch.status = status;
      s.batch.request_counts = {
        total: s.batch.request_counts.total,
        completed: ok.length,
        failed: bad.length,
      };
      s.batch.output_file_id = out.id;
      s.batch.error_file_id = err?.id ?? null;
      if (status === "completed") s.batch.completed_at = now();
      else s.batch.cancelled_at = now();
      return s;
    });
    if (!won) {
      for (const f of [out, err]) if (f) await this.#deleteFile(f.id).catch(() => {});
    }
    return next?.batch ?? null;
  }

  /** Ids of batches that are not finished yet. */
  async openBatches(): Promise<string[]> {
    const ids = await this.#batchIds();
    const states = await Promise.all(ids.map((id) => this.getBatch(id)));
    return states.filter((s): s is BatchState => !!s && !TERMINAL_STATUSES.includes(s.batch.status)).map((
      s,
    ) => s.batch.id);
  }
}

/** Ids the store makes (`file-…`, `batch_…`); anything else is unknown, never a storage error. */
export function validId(id: string): boolean {
  return /^[A-Za-z0-9_-]{1,128}$/.test(id);
}
