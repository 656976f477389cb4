import { assertEquals, assertThrows } from "@std/assert";
import { DEFAULTS } from "../config/mod.ts";
import { KvrelayError } from "../errors.ts";
import { defaultKvSettings, resolveKvSettings } from "./kv_settings.ts";

const base = defaultKvSettings(DEFAULTS.kv);

Deno.test("kv_compression.max_pool: default 7, 0 turns pooling off, anything else is a bad_request", () => {
  assertEquals(base.maxPool, 7);
  assertEquals(resolveKvSettings(base, { max_pool: 0 }).maxPool, 0);
  assertEquals(resolveKvSettings(base, { max_pool: 15, eviction_rate: 4 }).maxPool, 15);
  for (const bad of [-1, 2.5, "7", 256, null]) {
    const err = assertThrows(() => resolveKvSettings(base, { max_pool: bad }), KvrelayError);
    assertEquals(err.code, "bad_request");
    assertEquals(err.param, "kv_compression.max_pool");
  }
});
