import { assert, assertEquals } from "@std/assert";
import { jetstreamManager } from "@nats-io/jetstream";
import { LINES_STREAM, LINES_SUBJECT } from "../../shared/batch/mod.ts";
import type { BatchWorker } from "../../services/batch/worker.ts";
import { Hono } from "hono";
import { freePort, NATS_SERVER_BIN } from "../_harness/nats_server.ts";
import { BatchStore } from "../../shared/batch/mod.ts";
import { connectNats } from "../../shared/nats/mod.ts";
import { batchRoutes } from "../../services/gateway/batches.ts";
import { errorResponse } from "../../services/gateway/openai_error.ts";
import type { Backend } from "../../services/gateway/backend.ts";
import { EchoBackend } from "../../services/batch/echo_backend.ts";
import { KvrelayError } from "../../shared/errors.ts";
import {
  ACK_WAIT_MS,
  ECHO_MODEL,
  fileRows,
  KV_DEFAULTS,
  line,
  perCustomId,
  setup,
  spawnWorker,
  startWorker,
  submit,
  upload,
  waitDone,
  waitResults,
} from "./_setup.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

function ids(n: number, prefix = "req"): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
}

Deno.test("batch of 60 lines completes with exactly one output per custom_id", opts, async () => {
  const env = await setup();
  const worker = startWorker(env);
  try {
    const names = ids(60);
    const lines = names.map((id, i) =>
      // every tenth line overrides the batch's codec
      line(id, i % 10 === 0 ? { kv_compression: { codec: "zstd" } } : {})
    );
    const created = await submit(env.app, lines, { kv_compression: { codec: "sz" } });
    assertEquals(created.status, "in_progress");
    assertEquals(created.request_counts.total, 60);
    const b = await waitDone(env.app, created.id);
    assertEquals(b.status, "completed");
    assertEquals(b.request_counts, { total: 60, completed: 60, failed: 0 });
    assertEquals(b.error_file_id, null);
    const rows = await fileRows(env.app, b.output_file_id);
    const per = perCustomId(rows);
    assertEquals(per.size, 60);
    assert([...per.values()].every((n) => n === 1));
    for (const [i, r] of rows.entries()) {
      assertEquals(r.custom_id, names[i]); // input order
      assertEquals(r.response.status_code, 200);
      assertEquals(r.response.body.object, "text_completion");
      assertEquals(r.response.body.choices[0].text, `echo: prompt of ${names[i]}`);
      assertEquals(r.response.body.usage.kv.codec, i % 10 === 0 ? "zstd" : "sz");
    }
  } finally {
    await worker.stop();
    await env.close();
  }
});

Deno.test(
  "batch: malformed, unknown-url, wrong-model, duplicate and too-large lines go to the error file",
  opts,
  async () => {
    const env = await setup({ maxFileBytes: 1024 * 1024, maxPayload: 256 * 1024 });
    const worker = startWorker(env);
    try {
      const lines = [
        line("ok-0"),
        "{not json",
        line("ok-1"),
        JSON.stringify({
          custom_id: "bad-url",
          method: "POST",
          url: "/v1/embeddings",
          body: { model: ECHO_MODEL },
        }),
        line("bad-model", { model: "nope" }),
        line("ok-1"),
        line("huge", { prompt: "x".repeat(300 * 1024) }),
        JSON.stringify({
          custom_id: "chat-0",
          method: "POST",
          url: "/v1/chat/completions",
          body: { model: ECHO_MODEL, messages: [{ role: "user", content: "hi there" }] },
        }),
      ];
      const b = await waitDone(env.app, (await submit(env.app, lines)).id);
      assertEquals(b.status, "completed");
      assertEquals(b.request_counts, { total: 8, completed: 3, failed: 5 });
      const out = await fileRows(env.app, b.output_file_id);
      assertEquals(out.map((r) => r.custom_id), ["ok-0", "ok-1", "chat-0"]);
      assertEquals(out[2].response.body.choices[0].message.content, "echo: hi there");
      const err = await fileRows(env.app, b.error_file_id);
      assertEquals(err.length, 5);
      assertEquals(err[0].custom_id, null);
      assertEquals(err[0].error.code, "invalid_json_line");
      assert(err[0].error.message.startsWith("line 2:"));
      assertEquals(err[1].error.code, "invalid_url");
      assertEquals(err[2].custom_id, "bad-model");
      assertEquals(err[2].response.status_code, 404);
      assertEquals(err[3].error.code, "duplicate_custom_id");
      assertEquals([err[4].custom_id, err[4].error.code], ["huge", "line_too_large"]);
      // A file above the limit is refused at upload.
      const big = await upload(env.app, line("x").padEnd(1024 * 1024 + 1, " "));
      assertEquals(big.status, 413);
      assertEquals((await big.json()).error.code, "payload_too_large");
    } finally {
      await worker.stop();
      await env.close();
    }
  },
);

Deno.test("batch: cancel stops new lines and reports the partial result", opts, async () => {
  const env = await setup();
  const worker = startWorker(env, { delayMs: 50, concurrency: 2 });
  try {
    const created = await submit(env.app, ids(40).map((id) => line(id)));
    await waitResults(env.store, created.id, 40, 4);
    const res = await env.app.request(`/v1/batches/${created.id}/cancel`, { method: "POST" });
    assertEquals(res.status, 200);
    assertEquals((await res.json()).status, "cancelling");
    const b = await waitDone(env.app, created.id);
    assertEquals(b.status, "cancelled");
    assert(
      b.request_counts.completed >= 4 && b.request_counts.completed < 40,
      JSON.stringify(b.request_counts),
    );
    const rows = await fileRows(env.app, b.output_file_id);
    assertEquals(rows.length, b.request_counts.completed);
  } finally {
    await worker.stop();
    await env.close();
  }
});

Deno.test("batch: killing worker processes mid-batch loses and duplicates nothing", opts, async () => {
  const env = await setup();
  const total = 80;
  const procs: Deno.ChildProcess[] = [];
  const spawn = () => {
    const p = spawnWorker(env.server.url, 40);
    procs.push(p);
    return p;
  };
  try {
    const created = await submit(env.app, ids(total).map((id) => line(id)));
    // A runs alone and is killed; B and C then share the queue; B is killed; C finishes.
    const a = spawn();
    const atFirstKill = await waitResults(env.store, created.id, total, 20);
    a.kill("SIGKILL");
    await a.status;
    const b = spawn();
    const c = spawn();
    const atSecondKill = await waitResults(env.store, created.id, total, 50);
    b.kill("SIGKILL");
    await b.status;
    const done = await waitDone(env.app, created.id, 30_000);
    c.kill("SIGTERM");
    const stderr = new TextDecoder().decode((await c.output()).stderr);
    assertEquals(done.status, "completed");
    assertEquals(done.request_counts, { total, completed: total, failed: 0 });
    const rows = await fileRows(env.app, done.output_file_id);
    const per = perCustomId(rows);
    assertEquals(per.size, total);
    assert([...per.values()].every((n) => n === 1));
    const records = await env.store.results(created.id);
    assertEquals(records.length, total);
    const redelivered = records.filter((r) => r.delivery > 1).length;
    const stats = stderr.match(/stopped: (\{.*\})/)?.[1] ?? "?";
    console.log(
      `kill test: 2 SIGKILLs (at ${atFirstKill} and ${atSecondKill} of ${total} results), ` +
        `${redelivered} lines run again after redelivery, last worker ${stats}, ` +
        `${rows.length} outputs for ${per.size} custom_ids`,
    );
  } finally {
    for (const p of procs) {
      try {
        p.kill("SIGKILL");
      } catch { /* gone */ }
      await p.status.catch(() => {});
    }
    await env.close();
  }
});

Deno.test("batch: restarting nats-server mid-batch loses and duplicates nothing", opts, async () => {
  const env = await setup();
  const worker = startWorker(env, { delayMs: 20, concurrency: 4 });
  const total = 80;
  try {
    const created = await submit(env.app, ids(total).map((id) => line(id)));
    const atRestart = await waitResults(env.store, created.id, total, 20);
    await env.server.restart();
    const b = await waitDone(env.app, created.id, 30_000);
    assertEquals(b.status, "completed");
    assertEquals(b.request_counts, { total, completed: total, failed: 0 });
    const rows = await fileRows(env.app, b.output_file_id);
    const per = perCustomId(rows);
    assertEquals(per.size, total);
    assert([...per.values()].every((n) => n === 1));
    const records = await env.store.results(created.id);
    console.log(
      `restart test: ${atRestart} results at restart, ${records.filter((r) => r.delivery > 1).length} ` +
        `lines run again, worker ${
          JSON.stringify(worker.stats)
        }, ${rows.length} outputs for ${per.size} custom_ids`,
    );
  } finally {
    await worker.stop();
    await env.close();
  }
});

Deno.test("batch: lines lost from the work queue are put back from the input file", opts, async () => {
  const env = await setup();
  let worker: BatchWorker | undefined;
  try {
    const created = await submit(env.app, ids(30).map((id) => line(id)));
    // What a host crash can do: acks survive while the results they followed do not.
    const jsm = await jetstreamManager(env.nc);
    await jsm.streams.purge(LINES_STREAM, { filter: `${LINES_SUBJECT}.${created.id}` });
    worker = startWorker(env);
    const b = await waitDone(env.app, created.id);
    assertEquals(b.request_counts, { total: 30, completed: 30, failed: 0 });
    const per = perCustomId(await fileRows(env.app, b.output_file_id));
    assertEquals(per.size, 30);
    assert([...per.values()].every((n) => n === 1));
    assertEquals(env.store.lostLinesRepublished, 30);
  } finally {
    await worker?.stop();
    await env.close();
  }
});

Deno.test(
  "batch: a line redelivered after its result was stored is acknowledged, not run again",
  opts,
  async () => {
    const env = await setup();
    let worker: BatchWorker | undefined;
    try {
      const created = await submit(env.app, ids(10).map((id) => line(id)));
      // What a worker that died between storing and acknowledging leaves behind.
      for (let i = 0; i < 4; i++) {
        const task = { batchId: created.id, index: i, customId: `req-${i}` };
        await env.store.putResult(await env.store.resultKey(task), {
          id: `batch_req_pre${i}`,
          custom_id: task.customId,
          response: { status_code: 200, request_id: `pre-${i}`, body: { stored: "before the crash" } },
          error: null,
          index: i,
          delivery: 1,
        });
      }
      worker = startWorker(env);
      const b = await waitDone(env.app, created.id);
      assertEquals(b.request_counts, { total: 10, completed: 10, failed: 0 });
      const rows = await fileRows(env.app, b.output_file_id);
      assertEquals(rows.length, 10);
      assertEquals(rows.slice(0, 4).map((r) => r.response.body.stored), Array(4).fill("before the crash"));
      assertEquals(worker.stats.alreadyStored, 4);
      assertEquals(worker.stats.executed, 6);
    } finally {
      await worker?.stop();
      await env.close();
    }
  },
);

Deno.test(
  "batch: SIGKILL of nats-server mid-batch (store kept) still ends with one output per custom_id",
  opts,
  async () => {
    // The harness restarts with SIGTERM; this kills the server the hard way.
    const port = freePort();
    const dir = await Deno.makeTempDir({ prefix: "kvrelay-nats-kill-" });
    await Deno.writeTextFile(
      `${dir}/nats.conf`,
      `listen: 127.0.0.1:${port}\nmax_payload: 8388608\njetstream { store_dir: "${dir}/js" }\n`,
    );
    const launch = async () => {
      const p = new Deno.Command(NATS_SERVER_BIN, {
        args: ["-c", `${dir}/nats.conf`],
        stdout: "null",
        stderr: "null",
      })
        .spawn();
      for (let i = 0; i < 400; i++) {
        try {
          (await Deno.connect({ hostname: "127.0.0.1", port })).close();
          return p;
        } catch {
          await new Promise((r) => setTimeout(r, 25));
        }
      }
      throw new Error("nats-server did not start");
    };
    let server = await launch();
    const nc = await connectNats(`nats://127.0.0.1:${port}`, "batch-kill-nats-test");
    const store = await BatchStore.open(nc, { ackWaitMs: ACK_WAIT_MS });
    const app = new Hono();
    batchRoutes(app, { nc, kvDefaults: KV_DEFAULTS });
    app.onError((err, c) => errorResponse(c, err));
    const worker = startWorker({ store }, { delayMs: 20, concurrency: 4 });
    const total = 80;
    try {
      const created = await submit(app, ids(total).map((id) => line(id)));
      const atKill = await waitResults(store, created.id, total, 20);
      server.kill("SIGKILL");
      await server.status;
      server = await launch();
      const b = await waitDone(app, created.id, 30_000);
      assertEquals(b.status, "completed");
      assertEquals(b.request_counts, { total, completed: total, failed: 0 });
      const rows = await fileRows(app, b.output_file_id);
      const per = perCustomId(rows);
      assertEquals(per.size, total);
      assert([...per.values()].every((n) => n === 1));
      console.log(
        `nats SIGKILL test: ${atKill} results at the kill, ${store.lostLinesRepublished} lines put back, ` +
          `worker ${JSON.stringify(worker.stats)}, ${rows.length} outputs for ${per.size} custom_ids`,
      );
    } finally {
      await worker.stop();
      await nc.close();
      try {
        server.kill("SIGTERM");
      } catch { /* gone */ }
      await server.status;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
);

Deno.test(
  "batch: a line whose backend is unavailable is retried, then recorded as failed",
  opts,
  async () => {
    const env = await setup();
    // Fails every prompt's first two tries with `unavailable`; "never" always fails.
    const echo = new EchoBackend();
    const tries = new Map<string, number>();
    const flaky: Backend = {
      model: () => echo.model(),
      ready: () => echo.ready(),
      tokenize: (req) => echo.tokenize(req),
      detokenize: (ids) => echo.detokenize(ids),
      complete(input, signal) {
        const n = (tries.get(input.prompt!) ?? 0) + 1;
        tries.set(input.prompt!, n);
        if (n <= 2 || input.prompt!.includes("never")) {
          throw new KvrelayError("unavailable", "no decode instance answered");
        }
        return echo.complete(input, signal);
      },
    };
    const worker = startWorker(env, { backend: flaky, concurrency: 4 });
    try {
      const b = await waitDone(
        env.app,
        (await submit(env.app, [...ids(5).map((id) => line(id)), line("never")])).id,
      );
      assertEquals(b.request_counts, { total: 6, completed: 5, failed: 1 });
      const err = await fileRows(env.app, b.error_file_id);
      assertEquals([err[0].custom_id, err[0].response.status_code], ["never", 503]);
      assertEquals(tries.get("prompt of never"), 5);
      assertEquals(worker.stats.retried, 5 * 2 + 4);
    } finally {
      await worker.stop();
      await env.close();
    }
  },
);
