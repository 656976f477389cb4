/**
 * `npm start` (infra/launch/start.ts) with its own nats-server: a client without credentials is
 * refused at the broker, while every service, each with only its role's permissions, still
 * serves a completion and a batch (the batch worker's JetStream work included).
 */
import { assertEquals } from "@std/assert";
import { probeConnect } from "../_harness/nats_server.ts";
import { launchStandalone, waitFor } from "../_harness/launcher.ts";

Deno.test({
  name: "start.ts runs nats-server with per-role nkeys: anonymous refused, completions and batches served",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const svc = await launchStandalone({
      // credentials meant for another server must not leak into this one's services
      NATS_USER: "someone",
      NATS_PASSWORD: "else",
    });
    const { base, natsPort } = svc;
    try {
      await svc.ready();
      assertEquals(await probeConnect(natsPort), "-ERR 'Authorization Violation'");

      const r = await fetch(`${base}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "stories260K", prompt: "", max_tokens: 8, temperature: 0 }),
      });
      const body = await r.json();
      assertEquals(r.status, 200, JSON.stringify(body));
      assertEquals(body.usage.completion_tokens, 8);

      const line = (id: string) =>
        JSON.stringify({
          custom_id: id,
          method: "POST",
          url: "/v1/completions",
          body: { model: "stories260K", prompt: "Once", max_tokens: 4, temperature: 0 },
        });
      const form = new FormData();
      form.append("purpose", "batch");
      form.append("file", new File([`${line("a")}\n${line("b")}\n`], "in.jsonl"));
      const file = await (await fetch(`${base}/v1/files`, { method: "POST", body: form })).json();
      const created = await (await fetch(`${base}/v1/batches`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          input_file_id: file.id,
          endpoint: "/v1/completions",
          completion_window: "24h",
        }),
      })).json();
      const done = await waitFor("batch completed", 60_000, async () => {
        const b = await (await fetch(`${base}/v1/batches/${created.id}`)).json();
        return b.status === "completed" ? b : undefined;
      });
      assertEquals(done.request_counts, { total: 2, completed: 2, failed: 0 });
      const out = await (await fetch(`${base}/v1/files/${done.output_file_id}/content`)).text();
      const rows = out.trim().split("\n").map((l) => JSON.parse(l));
      assertEquals(rows.map((x) => [x.custom_id, x.response.status_code]).sort(), [["a", 200], ["b", 200]]);
    } finally {
      assertEquals(await svc.stop(), 0);
    }
  },
});
