/**
 * `deno task start` (infra/launch/start.ts): one command brings up nats-server and the four
 * services, /readyz turns ready, and SIGTERM stops every process it started.
 */
import { assert, assertEquals } from "@std/assert";
import { freePort } from "../_harness/nats_server.ts";
import { STORIES260K } from "../_harness/paths.ts";
import { launch } from "../_harness/launcher.ts";

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
    const natsPort = freePort();
    const svc = launch({
      KVRELAY_NATS_PORT: String(natsPort),
      // a store of its own: the checkout's .data/ is the user's, and another test may hold its lock
      KVRELAY_DATA_DIR: await Deno.makeTempDir({ prefix: "kvrelay-data-" }),
      KVRELAY_MODEL: STORIES260K.model,
      KVRELAY_TOKENIZER: STORIES260K.tokenizer,
      NATS_URL: "",
      // as under a service manager: no runtime dir, which Mesa's Vulkan drivers complain about
      XDG_RUNTIME_DIR: "",
    });
    const port = svc.port;
    try {
      assert(await svc.ready().catch(() => false), "the system became ready");
      assert(await portOpen(natsPort), "its own nats-server listens");
      const models = await (await fetch(`http://127.0.0.1:${port}/v1/models`)).json();
      assertEquals(models.data[0].id, "stories260K");
      assert(!svc.log().includes("XDG_RUNTIME_DIR"), "no XDG_RUNTIME_DIR noise at start");
    } finally {
      assertEquals(await svc.stop(), 0);
    }
    assertEquals(await portOpen(port), false, "gateway stopped");
    assertEquals(await portOpen(natsPort), false, "nats-server stopped");
  },
});
