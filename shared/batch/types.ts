/**
 * The batch job records, in OpenAI's Batch API shapes, plus the internal parts the workers
 * need (`BatchState.kv`, `LineTask`, `ResultRecord.index`).
 * @module
 */

export const BATCH_ENDPOINTS = ["/v1/completions", "/v1/chat/completions"] as const;
export type BatchEndpoint = (typeof BATCH_ENDPOINTS)[number];

export type BatchStatus =
  | "validating"
  | "failed"
  | "in_progress"
  | "finalizing"
  | "completed"
  | "expired"
  | "cancelling"
  | "cancelled";

export const TERMINAL_STATUSES: readonly BatchStatus[] = ["failed", "completed", "expired", "cancelled"];

export interface RequestCounts {
  total: number;
  completed: number;
  failed: number;
}

/** OpenAI's `file` object. */
export interface FileObject {
  id: string;
  object: "file";
  bytes: number;
  created_at: number;
  filename: string;
  purpose: string;
  status: "processed";
  status_details: null;
  /** Unix seconds after which the file is gone (null: kept until deleted). */
  expires_at: number | null;
}

/** What the files KV bucket holds per file: the public object and its owner. */
export interface StoredFile extends FileObject {
  /** The tenant (a hash of its API key; "" without API keys). Absent in older records: "". */
  owner?: string;
}

/** OpenAI's `batch` object. */
export interface BatchObject {
  id: string;
  object: "batch";
  endpoint: string;
  errors: null | { object: "list"; data: { code: string; message: string; line: number | null }[] };
  input_file_id: string;
  completion_window: string;
  status: BatchStatus;
  output_file_id: string | null;
  error_file_id: string | null;
  created_at: number;
  in_progress_at: number | null;
  expires_at: number;
  finalizing_at: number | null;
  completed_at: number | null;
  failed_at: number | null;
  expired_at: number | null;
  cancelling_at: number | null;
  cancelled_at: number | null;
  request_counts: RequestCounts;
  metadata: Record<string, string> | null;
}

/** What the batch KV bucket holds per batch: the public object and the batch's `kv_compression`. */
export interface BatchState {
  batch: BatchObject;
  /** The batch-level `kv_compression` object as sent (validated at creation). */
  kv?: unknown;
  /** The tenant that created it (see `StoredFile.owner`); its output files get the same owner. */
  owner?: string;
}

/** One JSONL line as a work-queue message. A line that failed validation carries `error`. */
export interface LineTask {
  batchId: string;
  /** 0-based line number in the input file. */
  index: number;
  customId: string | null;
  url?: string;
  body?: Record<string, unknown>;
  error?: { code: string; message: string };
}

/** One finished line: exactly one per result key, whatever the deliveries. */
export interface ResultRecord {
  id: string;
  custom_id: string | null;
  response: { status_code: number; request_id: string; body: unknown } | null;
  error: { code: string; message: string } | null;
  /** Internal: the line number, to write files in input order. */
  index: number;
  /** Internal: which JetStream delivery of the line produced this record. */
  delivery: number;
}

/** A record goes to the output file on a 200 response, else to the error file. */
export function isSuccess(r: ResultRecord): boolean {
  return r.response?.status_code === 200 && !r.error;
}
