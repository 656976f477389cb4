/**
 * `deno task start` (infra/launch/start.ts): one command brings up nats-server and the four
 * services, /readyz turns ready, and SIGTERM stops every process it started.
 */
import { assert, assertEquals } from "@std/assert";
import { freePort } from "../_harness/nats_server.ts";
import { REPO_DIR, STORIES260K } from "../_harness/paths.ts";

async function portOpen(port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    return true;
  } catch {
    return false;
  }
}

Deno.test({
  name: "start.ts brings up the whole system and SIGTERM stops everything it started",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const port = freePort();
    const natsPort = freePort();
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--cached-only", `${REPO_DIR}/infra/launch/start.ts`],
      env: {
        KVRELAY_PORT: String(port),
        KVRELAY_NATS_PORT: String(natsPort),
        // a store of its own: the checkout's .data/ is the user's, and another test may hold its lock
        KVRELAY_DATA_DIR: await Deno.makeTempDir({ prefix: "kvrelay-data-" }),
        KVRELAY_MODEL: STORIES260K.model,
        KVRELAY_TOKENIZER: STORIES260K.tokenizer,
        NATS_URL: "",
      },
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      const deadline = Date.now() + 60_000;
      let ready = false;
      while (!ready && Date.now() < deadline) {
        try {
          const r = await fetch(`http://127.0.0.1:${port}/readyz`);
          ready = r.ok;
          await r.body?.cancel();
        } catch { /* not yet */ }
        if (!ready) await new Promise((r) => setTimeout(r, 200));
      }
      assert(ready, "the system became ready");
      assert(await portOpen(natsPort), "its own nats-server listens");
      const models = await (await fetch(`http://127.0.0.1:${port}/v1/models`)).json();
      assertEquals(models.data[0].id, "stories260K");
    } finally {
      child.kill("SIGTERM");
      const status = await child.status;
      assertEquals(status.code, 0);
    }
    assertEquals(await portOpen(port), false, "gateway stopped");
    assertEquals(await portOpen(natsPort), false, "nats-server stopped");
  },
});
