/**
 * Shared set-up for the batch tests: a real nats-server with JetStream, the Hono app with
 * the batch routes, an in-process or subprocess worker running the echo backend, and
 * helpers to submit a batch and read its files.
 * @module
 */
import { Hono } from "hono";
import type { NatsConnection } from "@nats-io/nats-core";
import { type NatsServer, startNatsServer } from "../_harness/nats_server.ts";
import { REPO_DIR } from "../_harness/paths.ts";
import { connectNats } from "../../shared/nats/mod.ts";
import { type BatchObject, BatchStore } from "../../shared/batch/mod.ts";
import { DEFAULTS } from "../../shared/config/mod.ts";
import { defaultKvSettings } from "../../shared/pipeline/kv_settings.ts";
import { batchRoutes } from "../../services/gateway/batches.ts";
import { errorResponse } from "../../services/gateway/openai_error.ts";
import { ECHO_MODEL, EchoBackend } from "../../services/batch/echo_backend.ts";
import { BatchWorker } from "../../services/batch/worker.ts";
import type { Backend } from "../../services/gateway/backend.ts";

export const ACK_WAIT_MS = 1500;
export const KV_DEFAULTS = defaultKvSettings(DEFAULTS.kv);
export { ECHO_MODEL };

export interface Env {
  server: NatsServer;
  nc: NatsConnection;
  store: BatchStore;
  app: Hono;
  close(): Promise<void>;
}

export async function setup(opts: { maxFileBytes?: number; maxPayload?: number } = {}): Promise<Env> {
  const server = await startNatsServer({ maxPayload: opts.maxPayload });
  const nc = await connectNats(server.url, "batch-test");
  const store = await BatchStore.open(nc, { ackWaitMs: ACK_WAIT_MS });
  const app = new Hono();
  batchRoutes(app, {
    nc,
    backend: new EchoBackend(),
    kvDefaults: KV_DEFAULTS,
    maxFileBytes: opts.maxFileBytes,
    storeOptions: { ackWaitMs: ACK_WAIT_MS },
  });
  app.onError((err, c) => errorResponse(c, err));
  return {
    server,
    nc,
    store,
    app,
    close: async () => {
      await nc.close();
      await server.stop();
    },
  };
}

export function startWorker(
  env: Pick<Env, "store">,
  opts: { delayMs?: number; concurrency?: number; backend?: Backend } = {},
): BatchWorker {
  return new BatchWorker({
    store: env.store,
    backend: opts.backend ?? new EchoBackend({ delayMs: opts.delayMs ?? 0 }),
    retryBaseMs: 100,
    kvDefaults: KV_DEFAULTS,
    concurrency: opts.concurrency ?? 8,
    sweepMs: 200,
    log: (m) => console.error(`[batch worker] ${m}`),
  }).start();
}

/** `deno run services/batch/main.ts` with the echo backend, as the launcher would start it. */
export function spawnWorker(natsUrl: string, delayMs: number): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--cached-only", `${REPO_DIR}/services/batch/main.ts`],
    env: {
      NATS_URL: natsUrl,
      KVRELAY_BATCH_BACKEND: "echo",
      KVRELAY_ECHO_DELAY_MS: String(delayMs),
      KVRELAY_BATCH_ACK_WAIT_MS: String(ACK_WAIT_MS),
      KVRELAY_BATCH_CONCURRENCY: "4",
      OTEL_DENO: "false",
    },
    stdout: "null",
    stderr: "piped",
  }).spawn();
}

/** A JSONL line for /v1/completions whose echo is predictable. */
export function line(customId: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    custom_id: customId,
    method: "POST",
    url: "/v1/completions",
    body: { model: ECHO_MODEL, prompt: `prompt of ${customId}`, max_tokens: 16, ...extra },
  });
}

export async function upload(app: Hono, text: string): Promise<Response> {
  const form = new FormData();
  form.append("purpose", "batch");
  form.append("file", new File([text], "input.jsonl", { type: "application/jsonl" }));
  return await app.request("/v1/files", { method: "POST", body: form });
}

export async function submit(
  app: Hono,
  lines: string[],
  extra: Record<string, unknown> = {},
): Promise<BatchObject> {
  const up = await upload(app, lines.join("\n") + "\n");
  if (up.status !== 200) throw new Error(`upload: ${up.status} ${await up.text()}`);
  const file = await up.json();
  const res = await app.request("/v1/batches", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      input_file_id: file.id,
      endpoint: "/v1/completions",
      completion_window: "24h",
      ...extra,
    }),
  });
  if (res.status !== 200) throw new Error(`create: ${res.status} ${await res.text()}`);
  return await res.json();
}

export async function getBatch(app: Hono, id: string): Promise<BatchObject> {
  const res = await app.request(`/v1/batches/${id}`);
  if (res.status !== 200) throw new Error(`get batch: ${res.status} ${await res.text()}`);
  return await res.json();
}

/** Polls until the batch is in a final state; errors while NATS is down count as "not yet". */
export async function waitDone(app: Hono, id: string, ms = 20_000): Promise<BatchObject> {
  const deadline = Date.now() + ms;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const b = await getBatch(app, id);
      if (["completed", "cancelled", "failed", "expired"].includes(b.status)) return b;
      last = b.status;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`batch ${id} not done within ${ms} ms (last: ${last})`);
}

/** Waits until at least `n` lines of the batch have stored results. */
export async function waitResults(store: BatchStore, id: string, total: number, n: number): Promise<number> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const c = await store.counts(id, total);
    if (c.completed + c.failed >= n) return c.completed + c.failed;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`fewer than ${n} results within 20 s`);
}

// deno-lint-ignore no-explicit-any
export type Row = { id: string; custom_id: string | null; response: any; error: any };

export async function fileRows(app: Hono, fileId: string | null): Promise<Row[]> {
  if (!fileId) return [];
  const res = await app.request(`/v1/files/${fileId}/content`);
  if (res.status !== 200) throw new Error(`file content: ${res.status}`);
  return (await res.text()).split("\n").filter((l) => l).map((l) => JSON.parse(l));
}

/** How many rows each custom_id has. */
export function perCustomId(rows: Row[]): Map<string | null, number> {
  const m = new Map<string | null, number>();
  for (const r of rows) m.set(r.custom_id, (m.get(r.custom_id) ?? 0) + 1);
  return m;
}
