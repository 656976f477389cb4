import { assertEquals } from "@std/assert";
import OpenAI, { toFile } from "openai";
import { freePort } from "../_harness/nats_server.ts";
import { ECHO_MODEL, setup, startWorker } from "./_setup.ts";

Deno.test("openai SDK drives a batch end to end: upload, create, poll, list, download, cancel", {
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const env = await setup();
  let worker = startWorker(env, { delayMs: 5 });
  const port = freePort();
  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, env.app.fetch);
  try {
    const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "unused", maxRetries: 0 });
    const lines = Array.from({ length: 12 }, (_, i) =>
      JSON.stringify({
        custom_id: `chat-${i}`,
        method: "POST",
        url: "/v1/chat/completions",
        body: { model: ECHO_MODEL, messages: [{ role: "user", content: `question ${i}` }], max_tokens: 8 },
      }));
    const file = await client.files.create({
      file: await toFile(new TextEncoder().encode(lines.join("\n")), "questions.jsonl"),
      purpose: "batch",
    });
    assertEquals(file.purpose, "batch");
    assertEquals((await client.files.retrieve(file.id)).bytes, file.bytes);

    let batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
      metadata: { suite: "sdk" },
    });
    const deadline = Date.now() + 15_000;
    while (batch.status !== "completed" && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      batch = await client.batches.retrieve(batch.id);
    }
    assertEquals(batch.status, "completed");
    assertEquals(batch.request_counts, { total: 12, completed: 12, failed: 0 });
    assertEquals(batch.metadata, { suite: "sdk" });

    const text = await (await client.files.content(batch.output_file_id!)).text();
    const rows = text.trim().split("\n").map((l) => JSON.parse(l));
    assertEquals(rows.map((r) => r.custom_id), lines.map((_, i) => `chat-${i}`));
    assertEquals(rows[3].response.body.choices[0].message.content, "echo: question 3");

    // A second batch, created while no worker runs, to list and cancel.
    await worker.stop();
    const slow = await client.batches.create({
      input_file_id: file.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    });
    const listed: string[] = [];
    for await (const b of client.batches.list({ limit: 1 })) listed.push(b.id);
    assertEquals(new Set(listed), new Set([slow.id, batch.id]));
    assertEquals(listed.length, 2);
    assertEquals((await client.batches.cancel(slow.id)).status, "cancelling");
    worker = startWorker(env);
    let after = await client.batches.retrieve(slow.id);
    while (after.status !== "cancelled" && Date.now() < deadline + 10_000) {
      await new Promise((r) => setTimeout(r, 100));
      after = await client.batches.retrieve(slow.id);
    }
    assertEquals(after.status, "cancelled");
    assertEquals(after.request_counts, { total: 12, completed: 0, failed: 0 });
    const none = await (await client.files.content(after.output_file_id!)).text();
    assertEquals(none, "");
  } finally {
    await server.shutdown();
    await worker.stop();
    await env.close();
  }
});
