/**
 * `deno task start` (infra/launch/start.ts): one command brings up nats-server and the four
 * services, /readyz turns ready, and SIGTERM stops every process it started.
 */
import { assert, assertEquals } from "@std/assert";
import { launchStandalone } from "../_harness/launcher.ts";

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
    const svc = await launchStandalone({
      // as under a service manager: no runtime dir, which Mesa's Vulkan drivers complain about
      XDG_RUNTIME_DIR: "",
    });
    const { port, natsPort } = svc;
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
