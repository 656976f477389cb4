import { assertEquals, assertRejects, assertThrows } from "@std/assert";
import { trace } from "@opentelemetry/api";
import { getTracer, withSpan } from "./tracer.ts";
import { withSyncContext } from "./testdata/sync_context.ts";

// Without OTEL_DENO the API is a no-op: withSpan must still run fn and pass results and errors through.
// With OTEL_DENO, otel_export_test.ts checks what reaches the exporter.

Deno.test("withSpan() returns the value of a sync and an async fn", async () => {
  assertEquals(withSpan("sync", {}, () => 41 + 1), 42);
  assertEquals(
    await withSpan("async", { "kvrelay.layer": "0" }, async () => await Promise.resolve("x")),
    "x",
  );
});

Deno.test("withSpan() rethrows sync throws and async rejections", async () => {
  assertThrows(() => withSpan("sync", {}, () => JSON.parse("{")), SyntaxError);
  await assertRejects(
    () => withSpan("async", {}, () => Promise.reject(new RangeError("r"))),
    RangeError,
    "r",
  );
});

Deno.test("withSpan() makes its span the active one inside fn", () => {
  withSyncContext(() =>
    withSpan("outer", {}, (span) => {
      assertEquals(trace.getActiveSpan(), span);
    })
  );
  assertEquals(typeof getTracer().startSpan, "function");
});
