import { assertEquals, assertNotEquals } from "@std/assert";
import { lineKey, parseBatchInput } from "./jsonl.ts";

const ok = (id: string, url = "/v1/completions") =>
  JSON.stringify({ custom_id: id, method: "POST", url, body: { model: "m", prompt: "p" } });

Deno.test("parseBatchInput() keeps valid lines and turns each bad one into an error task", () => {
  const text = [
    ok("a"),
    "",
    "[1,2]",
    "{bad",
    JSON.stringify({ method: "POST", url: "/v1/completions", body: {} }),
    ok("b", "/v1/embeddings"),
    ok("a"),
    JSON.stringify({ custom_id: "c", method: "GET", url: "/v1/completions", body: {} }),
    JSON.stringify({ custom_id: "d", url: "/v1/chat/completions", body: "x" }),
    ok("e", "/v1/chat/completions"),
  ].join("\n");
  const tasks = parseBatchInput("batch_x", text);
  assertEquals(
    tasks.map((t) => [t.index, t.customId, t.error?.code ?? "ok"]),
    [
      [0, "a", "ok"],
      [2, null, "invalid_json_line"],
      [3, null, "invalid_json_line"],
      [4, null, "missing_custom_id"],
      [5, "b", "invalid_url"],
      [6, "a", "duplicate_custom_id"],
      [7, "c", "invalid_method"],
      [8, "d", "invalid_body"],
      [9, "e", "ok"],
    ],
  );
  assertEquals(tasks[2].error?.message.startsWith("line 4:"), true);
});

Deno.test("lineKey() keys by custom_id, and by line number for lines without a usable one", async () => {
  const a0 = await lineKey({ customId: "a", index: 0 });
  assertEquals(await lineKey({ customId: "a", index: 7 }), a0);
  assertNotEquals(
    await lineKey({ customId: "a", index: 6, error: { code: "duplicate_custom_id", message: "" } }),
    a0,
  );
  assertNotEquals(await lineKey({ customId: null, index: 0 }), a0);
  assertEquals(/^[0-9a-f]{32}$/.test(a0), true);
});
