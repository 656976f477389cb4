import { assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import { KvrelayError } from "../../../shared/errors.ts";
import { openSpanStore } from "../../../shared/telemetry/otlp/mod.ts";
import type { FlatSpan } from "../../../shared/telemetry/otlp/span.ts";
import { DEFAULT_STORE, parseTracesArgs, run } from "./traces.ts";

Deno.test("parseTracesArgs() reads listen, show and store options", () => {
  assertEquals(parseTracesArgs(["--listen", "127.0.0.1:4318"]), {
    mode: "listen",
    listen: { hostname: "127.0.0.1", port: 4318 },
    traceId: "last",
    store: DEFAULT_STORE,
  });
  assertEquals(parseTracesArgs(["--listen", "[::1]:9", "--store", "t.jsonl"]).listen, {
    hostname: "::1",
    port: 9,
  });
  assertEquals(parseTracesArgs(["--show", "abc", "--store", "t.jsonl"]).traceId, "abc");
  assertEquals(parseTracesArgs(["--show", "--last"]).traceId, "last");
  assertThrows(() => parseTracesArgs(["--listen", "host"]), KvrelayError, "HOST:PORT");
  assertThrows(() => parseTracesArgs(["--store"]), KvrelayError, "needs a value");
  assertThrows(() => parseTracesArgs(["--bogus"]), KvrelayError, "unknown option");
});

Deno.test("run(['--show']) prints the stored trace's tree; a missing trace exits 1", async () => {
  const dir = await Deno.makeTempDir();
  const logs: string[] = [];
  const log = console.log, error = console.error;
  console.log = (...a: unknown[]) => void logs.push(a.join(" "));
  console.error = () => {};
  try {
    const store = await openSpanStore(`${dir}/t.jsonl`);
    const base: Omit<FlatSpan, "spanId" | "name"> = {
      traceId: "c".repeat(32),
      kind: "internal",
      startTimeUnixNano: "1000000",
      endTimeUnixNano: "3000000",
      durationMs: 2,
      service: "gateway",
      scope: "kvrelay",
      attributes: {},
      status: { code: "unset" },
      events: [],
    };
    await store.append([
      { ...base, spanId: "2".repeat(16), parentSpanId: "1".repeat(16), name: "encode" },
      { ...base, spanId: "1".repeat(16), name: "POST /v1/chat/completions" },
    ]);
    assertEquals(await run(["--show", "--last", "--store", store.path]), 0);
    assertStringIncludes(logs.join("\n"), "POST /v1/chat/completions");
    assertStringIncludes(logs.join("\n"), "\n  encode");
    assertEquals(await run(["--show", "dddd", "--store", store.path]), 1);
    assertEquals(await run(["--show", "--store", `${dir}/none.jsonl`]), 1);
  } finally {
    console.log = log;
    console.error = error;
    await Deno.remove(dir, { recursive: true });
  }
});
