/**
 * Batch data under `npm start` (infra/launch/start.ts): files, batches and results survive a
 * restart of the whole system, in the JetStream store under KVRELAY_DATA_DIR; files can be
 * listed and deleted. Against a NATS without JetStream the batch worker says so once and stays
 * off, and everything else serves on.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { startNatsServer } from "../_harness/nats_server.ts";
import { STORIES260K } from "../_harness/paths.ts";
import { launch as launchStart, waitFor } from "../_harness/launcher.ts";

const MODEL = { KVRELAY_MODEL: STORIES260K.model, KVRELAY_TOKENIZER: STORIES260K.tokenizer };

/** `npm start` with the test model and `env`. */
const launch = (env: Record<string, string>) => launchStart({ ...MODEL, ...env });

const line = (id: string) =>
  JSON.stringify({
    custom_id: id,
    method: "POST",
    url: "/v1/completions",
    body: { model: "stories260K", prompt: "Once", max_tokens: 4, temperature: 0 },
  });

async function upload(base: string, text: string) {
  const form = new FormData();
  form.append("purpose", "batch");
  form.append("file", new File([text], "in.jsonl"));
  const r = await fetch(`${base}/v1/files`, { method: "POST", body: form });
  assertEquals(r.status, 200);
  return await r.json();
}

const json = async (url: string, init?: RequestInit) => {
  const r = await fetch(url, init);
  return { status: r.status, body: await r.json() };
};

Deno.test({
  name: "npm start keeps files, batches and results across a restart; files list and delete",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dataDir = await Deno.makeTempDir({ prefix: "kvrelay-data-" });
    const env = { NATS_URL: "", KVRELAY_DATA_DIR: dataDir };
    let sys = launch(env);
    try {
      await sys.ready();
      assertStringIncludes(sys.log(), `JetStream store: ${dataDir}/nats (kept across restarts)`);
      const input = await upload(sys.base, `${line("a")}\n${line("b")}\n${line("c")}\n`);
      const created = await json(`${sys.base}/v1/batches`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ input_file_id: input.id, endpoint: "/v1/completions" }),
      });
      assertEquals(created.status, 200, JSON.stringify(created.body));
      const done = await waitFor("batch completed", 30_000, async () => {
        const b = (await json(`${sys.base}/v1/batches/${created.body.id}`)).body;
        return b.status === "completed" ? b : undefined;
      });
      const before = await (await fetch(`${sys.base}/v1/files/${done.output_file_id}/content`)).text();
      assertEquals(done.request_counts, { total: 3, completed: 3, failed: 0 });
      assertEquals(before.trim().split("\n").length, 3);
      assertEquals(await sys.stop(), 0);

      sys = launch(env);
      await sys.ready();
      const batch = (await json(`${sys.base}/v1/batches/${created.body.id}`)).body;
      assertEquals([batch.status, batch.request_counts.completed], ["completed", 3]);
      assertEquals(await (await fetch(`${sys.base}/v1/files/${done.output_file_id}/content`)).text(), before);
      const listed = (await json(`${sys.base}/v1/files`)).body;
      assertEquals(listed.object, "list");
      const ids = listed.data.map((f: { id: string }) => f.id);
      assert(ids.includes(input.id) && ids.includes(done.output_file_id), JSON.stringify(ids));
      const onlyOne = (await json(`${sys.base}/v1/files?limit=1`)).body;
      assertEquals([onlyOne.data.length, onlyOne.has_more], [1, true]);

      const del = await json(`${sys.base}/v1/files/${input.id}`, { method: "DELETE" });
      assertEquals(del, { status: 200, body: { id: input.id, object: "file", deleted: true } });
      assertEquals((await json(`${sys.base}/v1/files/${input.id}`)).status, 404);
      assertEquals((await json(`${sys.base}/v1/files/${input.id}`, { method: "DELETE" })).status, 404);
      const left = (await json(`${sys.base}/v1/files`)).body.data.map((f: { id: string }) => f.id);
      assert(!left.includes(input.id));
    } finally {
      await sys.stop();
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "npm start against a NATS without JetStream: batch jobs off with one clear error, completions served",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const nats = await startNatsServer({ jetstream: false, anonymous: "refused" });
    const sys = launch({ NATS_URL: nats.url, KVRELAY_NATS_NKEY_DIR: nats.storeDir });
    try {
      await sys.ready();
      await waitFor(
        "the launcher gives up on batch",
        30_000,
        () => Promise.resolve(sys.log().includes("batch jobs are off") ? true : undefined),
      );
      assertStringIncludes(sys.log(), "JetStream is not enabled on the NATS server");
      assertEquals(
        sys.log().split("[batch] JetStream is not enabled").length - 1,
        1,
        "said once, no restarts",
      );
      const r = await json(`${sys.base}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "stories260K", prompt: "", max_tokens: 8, temperature: 0 }),
      });
      assertEquals(r.status, 200, JSON.stringify(r.body));
      const files = await json(`${sys.base}/v1/files`);
      assertEquals(files.status, 503);
      assertStringIncludes(files.body.error.message, "JetStream is not enabled");
      assertEquals(
        await Promise.race([sys.child.status.then(() => "exited"), Promise.resolve("running")]),
        "running",
      );
    } finally {
      const code = await sys.stop();
      await nats.stop();
      assertEquals(code, 0);
    }
  },
});
