/**
 * One tenant's view of the batch store: what the gateway serves to a caller. Every read,
 * list, download and cancel sees only the tenant's own files and batches; another tenant's
 * object, an expired file and a malformed id all look the same: absent (the gateway's 404).
 * Uploads count against the tenant's quota (`uploadQuotaBytes` of the store's options).
 *
 * A tenant is the hash of an API key (services/gateway/middleware/api_key), or "" when the
 * gateway runs without API keys; workers use the whole store.
 *
 * @example
 * ```ts
 * // const files = new TenantStore(store, tenantId("sk-..."));
 * // await files.getFile("file-…"); // null unless this tenant uploaded it
 * ```
 * @module
 */
import { KvrelayError } from "../errors.ts";
import type { BatchStore, CreateBatchParams } from "./store.ts";
import type { BatchObject, BatchState, FileObject } from "./types.ts";

export class TenantStore {
  readonly store: BatchStore;
  readonly owner: string;

  constructor(store: BatchStore, owner: string) {
    this.store = store;
    this.owner = owner;
  }

  /** Stores an upload unless it would take the tenant past its quota (413). */
  async putFile(filename: string, purpose: string, bytes: Uint8Array): Promise<FileObject> {
    const quota = this.store.options.uploadQuotaBytes;
    if (quota > 0) {
      const used = (await this.store.fileRecords())
        .filter((r) => r.owner === this.owner && r.file.purpose === "batch")
        .reduce((n, r) => n + r.file.bytes, 0);
      if (used + bytes.length > quota) {
        throw new KvrelayError(
          "payload_too_large",
          `upload quota exceeded: ${used} of ${quota} bytes in use, this file has ${bytes.length}`,
          { param: "file" },
        );
      }
    }
    return await this.store.putFile(filename, purpose, bytes, { owner: this.owner });
  }

  async getFile(id: string): Promise<FileObject | null> {
    const rec = await this.store.fileRecord(id);
    return rec && rec.owner === this.owner ? rec.file : null;
  }

  /** The tenant's live files, newest first; only those of `purpose` when given. */
  async listFiles(purpose?: string): Promise<FileObject[]> {
    return (await this.store.fileRecords())
      .filter((r) => r.owner === this.owner && (purpose === undefined || r.file.purpose === purpose))
      .map((r) => r.file)
      .sort((a, b) => b.created_at - a.created_at || (a.id < b.id ? 1 : -1));
  }

  /** Deletes one of the tenant's files; false when it has none of that id. */
  async deleteFile(id: string): Promise<boolean> {
    return (await this.getFile(id)) ? await this.store.deleteFile(id) : false;
  }

  async fileContent(id: string): Promise<Uint8Array | null> {
    return (await this.getFile(id)) ? await this.store.fileContent(id) : null;
  }

  /** A batch from one of the tenant's own files (another's is `not_found`). */
  createBatch(p: Omit<CreateBatchParams, "owner">): Promise<BatchObject> {
    return this.store.createBatch({ ...p, owner: this.owner });
  }

  async getBatch(id: string): Promise<BatchState | null> {
    const s = await this.store.getBatch(id);
    return s && (s.owner ?? "") === this.owner ? s : null;
  }

  /** The tenant's batches, newest first. */
  async listBatches(): Promise<BatchObject[]> {
    return (await this.store.listBatchStates()).filter((s) => (s.owner ?? "") === this.owner).map((s) =>
      s.batch
    );
  }

  async cancel(id: string): Promise<BatchObject | null> {
    return (await this.getBatch(id)) ? await this.store.cancel(id) : null;
  }
}
