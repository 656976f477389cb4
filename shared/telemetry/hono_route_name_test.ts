import { assertEquals } from "@std/assert";
import { Hono } from "hono";
import { honoRouteName } from "./hono_route_name.ts";

// The renaming itself needs Deno's server span: otel_export_test.ts checks it under OTEL_DENO.

Deno.test("honoRouteName() passes responses and errors through when no span is active", async () => {
  const app = new Hono();
  app.use(honoRouteName({ unmatchedName: "unmatched" }));
  app.onError((_err, c) => c.text("failed", 500));
  app.get("/v1/items/:id", (c) => c.text(c.req.param("id")));
  app.get("/boom", () => {
    throw new Error("x");
  });
  assertEquals(await (await app.request("/v1/items/7")).text(), "7");
  assertEquals((await app.request("/boom")).status, 500);
  assertEquals((await app.request("/nowhere")).status, 404);
});
