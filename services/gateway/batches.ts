/**
 * OpenAI's Files and Batches endpoints, backed by JetStream (shared/batch): upload a JSONL
 * input file, list and delete files, create a batch from it, follow it, cancel it, download its
 * output and error files. The lines themselves run in batch workers (services/batch), not here.
 *
 * `POST /v1/files` takes multipart form data (`file`, `purpose`); files above
 * `maxFileBytes` are refused with a 413. The gateway's general body limit must not apply to
 * this route (see `BATCH_FILES_PATH`).
 *
 * Every route sees the caller's tenant only (shared/batch/tenant.ts): another tenant's file or
 * batch, and a malformed id, answer 404; uploads count against the tenant's quota.
 * @module
 */
import type { Context, Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { bodyLimit } from "hono/body-limit";
import type { NatsConnection } from "@nats-io/nats-core";
import { badRequest, KvrelayError } from "../../shared/errors.ts";
import type { KvSettings } from "../../shared/handoff/contract.ts";
import { resolveKvSettings } from "../../shared/pipeline/kv_settings.ts";
import { BATCH_ENDPOINTS, BatchStore, type BatchStoreOptions, TenantStore } from "../../shared/batch/mod.ts";
import type { Backend } from "./backend.ts";
import { parseJsonBody } from "./validate.ts";
import { tenantOf } from "./middleware/api_key/index.ts";

/** The upload route; exempt it from the gateway's `maxBodyBytes` limit, it has its own. */
export const BATCH_FILES_PATH = "/v1/files";

export const DEFAULT_MAX_FILE_BYTES = 100 * 1024 * 1024;

export interface BatchRouteDeps {
  nc: NatsConnection;
  /** Kept for symmetry with the completion routes; lines run in the batch workers. */
  backend?: Backend;
  /** Defaults a batch's `kv_compression` is validated against. */
  kvDefaults?: KvSettings;
  maxFileBytes?: number;
  /** Store options (tests shorten `ackWaitMs`); the first opener creates the stream and consumer. */
  storeOptions?: BatchStoreOptions;
}

/** Registers the Files and Batches routes on `app`. */
export function batchRoutes(app: Hono, deps: BatchRouteDeps): void {
  let opened: Promise<BatchStore> | undefined;
  const store = () => {
    opened ??= BatchStore.open(deps.nc, deps.storeOptions).catch((err) => {
      opened = undefined;
      throw new KvrelayError("unavailable", `batch storage unavailable: ${(err as Error).message}`, {
        cause: err,
      });
    });
    return opened;
  };
  /** The caller's own part of the store. */
  const tenant = async (c: Context) => new TenantStore(await store(), tenantOf(c));
  const maxFileBytes = deps.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;

  app.post(
    BATCH_FILES_PATH,
    bodyLimit({
      maxSize: maxFileBytes + 64 * 1024,
      onError: () => {
        throw new KvrelayError("payload_too_large", `the file exceeds ${maxFileBytes} bytes`, {
          param: "file",
        });
      },
    }),
    guard(async function uploadFile(c) {
      let form: Record<string, string | File | (string | File)[]>;
      try {
        form = await c.req.parseBody({ all: false });
      } catch {
        throw badRequest("the body must be multipart/form-data with 'file' and 'purpose'");
      }
      const file = form.file;
      if (!(file instanceof File)) throw badRequest("'file' is required and must be a file", "file");
      const purpose = form.purpose;
      if (typeof purpose !== "string" || purpose !== "batch") {
        throw badRequest("'purpose' must be 'batch'", "purpose");
      }
      if (file.size > maxFileBytes) {
        throw new KvrelayError("payload_too_large", `the file exceeds ${maxFileBytes} bytes`, {
          param: "file",
        });
      }
      const bytes = new Uint8Array(await file.arrayBuffer());
      return c.json(await (await tenant(c)).putFile(file.name || "upload.jsonl", purpose, bytes));
    }),
  );

  app.get(
    BATCH_FILES_PATH,
    guard(async function listFiles(c) {
      const purpose = c.req.query("purpose");
      const limitRaw = c.req.query("limit");
      const limit = limitRaw === undefined ? 10_000 : Number(limitRaw);
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
        throw badRequest("'limit' must be an integer in [1, 10000]", "limit");
      }
      const order = c.req.query("order") ?? "desc";
      if (order !== "asc" && order !== "desc") throw badRequest("'order' must be asc or desc", "order");
      const all = await (await tenant(c)).listFiles(purpose);
      if (order === "asc") all.reverse();
      return c.json(page(all, c.req.query("after"), limit));
    }),
  );

  app.delete(
    "/v1/files/:id",
    guard(async function deleteFile(c) {
      const id = idParam(c);
      if (!(await (await tenant(c)).deleteFile(id))) throw notFound("file", id);
      return c.json({ id, object: "file", deleted: true });
    }),
  );

  app.get(
    "/v1/files/:id",
    guard(async function getFile(c) {
      const f = await (await tenant(c)).getFile(idParam(c));
      if (!f) throw notFound("file", idParam(c));
      return c.json(f);
    }),
  );

  app.get(
    "/v1/files/:id/content",
    guard(async function getFileContent(c) {
      const bytes = await (await tenant(c)).fileContent(idParam(c));
      if (!bytes) throw notFound("file", idParam(c));
      return c.body(bytes as Uint8Array<ArrayBuffer>, 200, { "content-type": "application/jsonl" });
    }),
  );

  app.post(
    "/v1/batches",
    guard(async function createBatch(c) {
      const b = parseJsonBody(await c.req.text());
      if (typeof b.input_file_id !== "string" || !b.input_file_id) {
        throw badRequest("'input_file_id' is required", "input_file_id");
      }
      if (typeof b.endpoint !== "string" || !(BATCH_ENDPOINTS as readonly string[]).includes(b.endpoint)) {
        throw badRequest(`'endpoint' must be one of ${BATCH_ENDPOINTS.join(", ")}`, "endpoint");
      }
      const window = b.completion_window ?? "24h";
      if (window !== "24h") throw badRequest("'completion_window' must be '24h'", "completion_window");
      const metadata = parseMetadata(b.metadata);
      // Validate the batch-level settings now: a bad one is a 400, not N error lines.
      if (deps.kvDefaults) resolveKvSettings(deps.kvDefaults, b.kv_compression);
      const batch = await (await tenant(c)).createBatch({
        inputFileId: b.input_file_id,
        endpoint: b.endpoint,
        completionWindow: window,
        metadata,
        kv: b.kv_compression ?? undefined,
      });
      return c.json(batch);
    }),
  );

  app.get(
    "/v1/batches",
    guard(async function listBatches(c) {
      const limitRaw = c.req.query("limit");
      const limit = limitRaw === undefined ? 20 : Number(limitRaw);
      if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
        throw badRequest("'limit' must be an integer in [1, 100]", "limit");
      }
      const all = await (await tenant(c)).listBatches();
      return c.json(page(all, c.req.query("after"), limit));
    }),
  );

  app.get(
    "/v1/batches/:id",
    guard(async function getBatch(c) {
      const s = await (await tenant(c)).getBatch(idParam(c));
      if (!s) throw notFound("batch", idParam(c));
      return c.json(s.batch);
    }),
  );

  app.post(
    "/v1/batches/:id/cancel",
    guard(async function cancelBatch(c) {
      const id = idParam(c);
      const b = await (await tenant(c)).cancel(id);
      if (!b) throw notFound("batch", id);
      if (b.status !== "cancelling" && b.status !== "cancelled") {
        throw badRequest(`batch '${id}' is ${b.status} and cannot be cancelled`);
      }
      return c.json(b);
    }),
  );
}

/**
 * A NATS failure under a handler (server restarting, JetStream timing out) is a 503 the
 * client may retry, not an opaque 500.
 */
function guard(handler: (c: Context) => Promise<Response>) {
  return async function batchRoute(c: Context): Promise<Response> {
    try {
      return await handler(c);
    } catch (err) {
      if (err instanceof KvrelayError || err instanceof HTTPException) throw err;
      throw new KvrelayError("unavailable", `batch storage unavailable: ${(err as Error).message}`, {
        cause: err,
      });
    }
  };
}

function notFound(what: string, id: string): KvrelayError {
  return new KvrelayError("not_found", `no ${what} '${id}'`);
}

function parseMetadata(m: unknown): Record<string, string> | null {
  if (m === undefined || m === null) return null;
  if (
    typeof m !== "object" || Array.isArray(m) || Object.keys(m).length > 16 ||
    Object.entries(m).some(([k, v]) => k.length > 64 || typeof v !== "string" || v.length > 512)
  ) {
    throw badRequest(
      "'metadata' must be at most 16 string pairs (keys <= 64, values <= 512 chars)",
      "metadata",
    );
  }
  return m as Record<string, string>;
}

function idParam(c: Context): string {
  return c.req.param("id") ?? "";
}

/** One page of an OpenAI list: the items after the one with id `after`, at most `limit`. */
function page<T extends { id: string }>(all: T[], after: string | undefined, limit: number) {
  let rest = all;
  if (after) {
    const i = all.findIndex((x) => x.id === after);
    rest = i < 0 ? [] : all.slice(i + 1);
  }
  const data = rest.slice(0, limit);
  return {
    object: "list",
    data,
    first_id: data[0]?.id ?? null,
    last_id: data.at(-1)?.id ?? null,
    has_more: rest.length > limit,
  };
}
