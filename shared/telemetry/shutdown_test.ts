import { assertEquals } from "@std/assert";
import { onShutdown, runCleanups } from "./shutdown.ts";

// installShutdown() itself (signal → cleanups → Deno.exit → spans flushed) is covered by
// otel_export_test.ts in a child process.

Deno.test("runCleanups() runs cleanups newest first and collects errors without stopping", async () => {
  const order: string[] = [];
  onShutdown(() => void order.push("nats"));
  const off = onShutdown(() => void order.push("removed"));
  onShutdown(() => {
    order.push("server");
    throw new Error("close failed");
  });
  off();
  const errors = await runCleanups(1000);
  assertEquals(order, ["server", "nats"]);
  assertEquals(errors.map((e) => (e as Error).message), ["close failed"]);
  assertEquals(await runCleanups(1000), [], "each cleanup runs once");
});

Deno.test("runCleanups() stops waiting at the deadline", async () => {
  let aborted = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  onShutdown((signal) =>
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, 5000);
      signal.addEventListener("abort", () => aborted = true);
    })
  );
  onShutdown(() => {});
  const t0 = performance.now();
  const errors = await runCleanups(50);
  clearTimeout(timer);
  assertEquals([aborted, errors.length], [true, 1]);
  assertEquals(performance.now() - t0 < 1000, true);
});
