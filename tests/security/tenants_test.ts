/**
 * Tenants: two API keys through the gateway's Files and Batches routes on a real JetStream.
 * Neither sees, reads, downloads, uses or cancels the other's files and batches (404, as for
 * an id that does not exist); uploads count against each key's own quota; files expire; the
 * body limit and malformed ids never answer before or instead of auth.
 */
import { assertEquals, assertStringIncludes } from "@std/assert";
import type { Hono } from "hono";
import { startNatsServer } from "../_harness/nats_server.ts";
import { connectNats } from "../../shared/nats/connect.ts";
import { BatchStore } from "../../shared/batch/mod.ts";
import { createApp } from "../../services/gateway/app.ts";
import { EchoBackend } from "../../services/batch/echo_backend.ts";
import { BatchWorker } from "../../services/batch/worker.ts";
import { ECHO_MODEL, KV_DEFAULTS, line, waitDone } from "../batch/_setup.ts";

/** The app as one API key's client sees it (for tests/batch helpers that take an app). */
function asTenant(app: Hono, key: string): Hono {
  return { request: (path: string) => app.request(path, as(key)) } as unknown as Hono;
}

const K1 = "sk-tenant-one", K2 = "sk-tenant-two";

async function withGateway(
  storeOptions: { uploadQuotaBytes?: number; fileTtlMs?: number },
  fn: (app: Hono, store: BatchStore) => Promise<void>,
) {
  const server = await startNatsServer();
  const nc = await connectNats(server.url, "tenants-test");
  try {
    const options = { ackWaitMs: 2000, ...storeOptions };
    const store = await BatchStore.open(nc, options);
    const app = createApp({
      backend: new EchoBackend(),
      kvDefaults: KV_DEFAULTS,
      maxTokensLimit: 64,
      maxBodyBytes: 4096,
      apiKeys: [K1, K2],
      batch: { nc, kvDefaults: KV_DEFAULTS, storeOptions: options },
    });
    await fn(app, store);
  } finally {
    await nc.close();
    await server.stop();
  }
}

const as = (key: string | undefined, init: RequestInit = {}): RequestInit => ({
  ...init,
  headers: { ...(init.headers ?? {}), ...(key ? { authorization: `Bearer ${key}` } : {}) },
});

async function upload(app: Hono, key: string | undefined, text: string): Promise<Response> {
  const form = new FormData();
  form.append("purpose", "batch");
  form.append("file", new File([text], "in.jsonl"));
  return await app.request("/v1/files", as(key, { method: "POST", body: form }));
}

async function createBatch(app: Hono, key: string, fileId: string): Promise<Response> {
  return await app.request(
    "/v1/batches",
    as(key, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ input_file_id: fileId, endpoint: "/v1/completions", completion_window: "24h" }),
    }),
  );
}

const status = async (r: Response | Promise<Response>) => {
  const res = await r;
  await res.body?.cancel();
  return res.status;
};

Deno.test("gateway: two API keys never see each other's files or batches (404), outputs included", async () => {
  await withGateway({}, async (app, store) => {
    const f1 = await (await upload(app, K1, `${line("a")}\n${line("b")}\n`)).json();
    const f2 = await (await upload(app, K2, `${line("c")}\n`)).json();
    assertEquals(await status(app.request(`/v1/files/${f1.id}`, as(K1))), 200);
    assertEquals(await status(app.request(`/v1/files/${f1.id}`, as(K2))), 404);
    assertEquals(await status(app.request(`/v1/files/${f1.id}/content`, as(K2))), 404);
    assertEquals(await status(app.request(`/v1/files/${f2.id}/content`, as(K1))), 404);

    const stolen = await createBatch(app, K2, f1.id);
    assertEquals(stolen.status, 404);
    assertEquals((await stolen.json()).error.param, "input_file_id");

    const b1 = await (await createBatch(app, K1, f1.id)).json();
    const b2 = await (await createBatch(app, K2, f2.id)).json();
    assertEquals(await status(app.request(`/v1/batches/${b1.id}`, as(K2))), 404);
    assertEquals(await status(app.request(`/v1/batches/${b1.id}/cancel`, as(K2, { method: "POST" }))), 404);
    const list1 = await (await app.request("/v1/batches", as(K1))).json();
    const list2 = await (await app.request("/v1/batches", as(K2))).json();
    assertEquals(list1.data.map((b: { id: string }) => b.id), [b1.id]);
    assertEquals(list2.data.map((b: { id: string }) => b.id), [b2.id]);

    const worker = new BatchWorker({
      store,
      backend: new EchoBackend(),
      kvDefaults: KV_DEFAULTS,
      sweepMs: 100,
    }).start();
    try {
      const done = await waitDone(asTenant(app, K1), b1.id);
      assertEquals(done.status, "completed");
      const out = await app.request(`/v1/files/${done.output_file_id}/content`, as(K1));
      assertEquals(out.status, 200);
      assertStringIncludes(await out.text(), `"custom_id":"a"`);
      assertEquals(await status(app.request(`/v1/files/${done.output_file_id}`, as(K2))), 404);
      assertEquals(await status(app.request(`/v1/files/${done.output_file_id}/content`, as(K2))), 404);
    } finally {
      await worker.stop();
    }
    // what is stored is a hash of the key, never the key
    const rec = await store.fileRecord(f1.id);
    assertEquals(rec!.owner.length, 64);
    assertEquals(rec!.owner.includes(K1), false);
  });
});

Deno.test("gateway: auth comes first (401 before 413), and malformed ids are 404, never 503", async () => {
  await withGateway({}, async (app) => {
    const big = JSON.stringify({ model: ECHO_MODEL, prompt: "x".repeat(10_000) });
    const post = (key?: string) =>
      app.request(
        "/v1/completions",
        as(key, { method: "POST", headers: { "content-type": "application/json" }, body: big }),
      );
    assertEquals(await status(post()), 401);
    assertEquals(await status(post("sk-wrong")), 401);
    assertEquals(await status(post(K1)), 413);
    assertEquals(await status(upload(app, undefined, line("a"))), 401);
    for (const id of ["a.b", "x*y", "%2E%2E", "a%20b", "%00", "f".repeat(300), "batch_%3E"]) {
      assertEquals(await status(app.request(`/v1/files/${id}`, as(K1))), 404, `file ${id}`);
      assertEquals(await status(app.request(`/v1/files/${id}/content`, as(K1))), 404, `content ${id}`);
      assertEquals(await status(app.request(`/v1/batches/${id}`, as(K1))), 404, `batch ${id}`);
      assertEquals(
        await status(app.request(`/v1/batches/${id}/cancel`, as(K1, { method: "POST" }))),
        404,
        `cancel ${id}`,
      );
      assertEquals((await createBatch(app, K1, decodeURIComponent(id))).status, 404, `create from ${id}`);
    }
  });
});

Deno.test("gateway: each API key has its own upload quota, and files expire", async () => {
  await withGateway({ uploadQuotaBytes: 1000, fileTtlMs: 1 }, async (app) => {
    const text = line("q").padEnd(600, " ");
    const first = await (await upload(app, K1, text)).json();
    const over = await upload(app, K1, text);
    assertEquals(over.status, 413);
    assertStringIncludes((await over.json()).error.message, "quota");
    assertEquals(await status(upload(app, K2, text)), 200);
    // the quota frees when the file expires (expires_at is in whole seconds)
    assertEquals(typeof first.expires_at, "number");
    const deadline = Date.now() + 10_000;
    while (await status(app.request(`/v1/files/${first.id}`, as(K1))) !== 404) {
      if (Date.now() > deadline) throw new Error("the file never expired");
      await new Promise((r) => setTimeout(r, 100));
    }
    assertEquals(await status(upload(app, K1, text)), 200);
  });
});
