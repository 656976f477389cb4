/**
 * Batch jobs on JetStream: the store (files, batch state, the line work queue, results),
 * each tenant's view of it, and the JSONL input parser. Services import only this file.
 * @module
 */
export {
  BATCHES_BUCKET,
  BatchStore,
  type BatchStoreOptions,
  type CreateBatchParams,
  DEFAULT_BATCH_STORE_OPTIONS,
  type FileRecord,
  FILES_BUCKET,
  JetStreamMissing,
  LINES_STREAM,
  LINES_SUBJECT,
  RESULTS_BUCKET,
  validId,
  WORKERS_CONSUMER,
} from "./store.ts";
export { TenantStore } from "./tenant.ts";
export { lineKey, parseBatchInput } from "./jsonl.ts";
export {
  BATCH_ENDPOINTS,
  type BatchEndpoint,
  type BatchObject,
  type BatchState,
  type BatchStatus,
  type FileObject,
  isSuccess,
  type LineTask,
  type RequestCounts,
  type ResultRecord,
  type StoredFile,
  TERMINAL_STATUSES,
} from "./types.ts";
