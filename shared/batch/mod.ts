/**
 * Batch jobs on JetStream: the store (files, batch state, the line work queue, results)
 * and the JSONL input parser. Services import only this file.
 * @module
 */
export {
  BATCHES_BUCKET,
  BatchStore,
  type BatchStoreOptions,
  type CreateBatchParams,
  DEFAULT_BATCH_STORE_OPTIONS,
  FILES_BUCKET,
  LINES_STREAM,
  LINES_SUBJECT,
  RESULTS_BUCKET,
  WORKERS_CONSUMER,
} from "./store.ts";
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
  TERMINAL_STATUSES,
} from "./types.ts";
