import { assertEquals } from "@std/assert";
import type { FlatSpan } from "./span.ts";
import { openSpanStore, readSpans } from "./store.ts";

const s = (id: string): FlatSpan => ({
  traceId: "a".repeat(32),
  spanId: id.padStart(16, "0"),
  name: id,
  kind: "internal",
  startTimeUnixNano: "0",
  endTimeUnixNano: "0",
  durationMs: 0,
  service: "svc",
  scope: "kvrelay",
  attributes: {},
  status: { code: "unset" },
  events: [],
});

Deno.test("openSpanStore() appends JSON lines in order; readSpans() skips torn lines", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const store = await openSpanStore(`${dir}/sub/traces.jsonl`);
    await Promise.all([store.append([s("1"), s("2")]), store.append([]), store.append([s("3")])]);
    await Deno.writeTextFile(store.path, '{"traceId": "torn', { append: true });
    assertEquals((await readSpans(store.path)).map((x) => x.name), ["1", "2", "3"]);
    const again = await openSpanStore(store.path);
    await again.append([s("4")]);
    assertEquals(
      (await readSpans(store.path)).map((x) => x.name),
      ["1", "2", "3", "4"],
      "torn line closed on open",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
