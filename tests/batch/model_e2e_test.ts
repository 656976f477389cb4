/**
 * A batch on the real model: prefill, compression and decode run as their own processes,
 * the batch worker runs lines through the same `NatsBackend` the gateway uses, and each
 * line's text equals what `/v1/completions` answers online for the same request.
 */
import { assertEquals } from "@std/assert";
import { Hono } from "hono";
import { startNatsServer } from "../_harness/nats_server.ts";
import { startServices } from "../_harness/services.ts";
import { STORIES260K } from "../_harness/paths.ts";
import { loadConfig } from "../../shared/config/mod.ts";
import { connectNats } from "../../shared/nats/mod.ts";
import { BatchStore } from "../../shared/batch/mod.ts";
import { defaultKvSettings } from "../../shared/pipeline/kv_settings.ts";
import { NatsBackend } from "../../services/gateway/nats_backend.ts";
import { batchRoutes } from "../../services/gateway/batches.ts";
import { errorResponse } from "../../services/gateway/openai_error.ts";
import { BatchWorker } from "../../services/batch/worker.ts";
import { fileRows, submit, waitDone } from "./_setup.ts";

const ENV = { KVRELAY_MODEL: STORIES260K.model, KVRELAY_TOKENIZER: STORIES260K.tokenizer };

Deno.test({
  name: "batch on the real model: each line equals the online completion, kv_compression per line",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const nats = await startNatsServer();
    const svc = await startServices(nats.url, ENV);
    const nc = await connectNats(nats.url, "batch-model-test");
    const config = loadConfig({ ...ENV, NATS_URL: nats.url });
    const backend = new NatsBackend(nc, config);
    const store = await BatchStore.open(nc, { ackWaitMs: 5000 });
    const worker = new BatchWorker({
      store,
      backend,
      kvDefaults: defaultKvSettings(config.kv),
      concurrency: 2,
      sweepMs: 200,
    }).start();
    const app = new Hono();
    batchRoutes(app, { nc, backend, kvDefaults: defaultKvSettings(config.kv) });
    app.onError((err, c) => errorResponse(c, err));
    try {
      const model = (await backend.model()).id;
      const bodies = [
        { model, prompt: "Once upon a time", max_tokens: 12, temperature: 0 },
        { model, prompt: "The cat", max_tokens: 12, temperature: 0, kv_compression: { codec: "zstd" } },
        { model, prompt: "Lily saw a", max_tokens: 12, temperature: 0, kv_compression: { codec: "raw" } },
      ];
      const lines = bodies.map((body, i) =>
        JSON.stringify({ custom_id: `m-${i}`, method: "POST", url: "/v1/completions", body })
      );
      const b = await waitDone(app, (await submit(app, lines)).id, 60_000);
      assertEquals(b.request_counts, { total: 3, completed: 3, failed: 0 });
      const rows = await fileRows(app, b.output_file_id);
      for (const [i, body] of bodies.entries()) {
        const online = await (await fetch(`${svc.baseUrl}/v1/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
        })).json();
        assertEquals(rows[i].custom_id, `m-${i}`);
        assertEquals(rows[i].response.body.choices[0].text, online.choices[0].text);
        assertEquals(rows[i].response.body.usage.kv.codec, online.usage.kv.codec);
      }
      assertEquals(rows[1].response.body.usage.kv.codec, "zstd");
    } finally {
      await worker.stop();
      await nc.close();
      await svc.stop();
      await nats.stop();
    }
  },
});
