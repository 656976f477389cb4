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

Deno.test("kv_compression: a knob the chosen codec does not have is a bad_request, never ignored", () => {
  assertEquals(base.codec, "fast");
  assertEquals(resolveKvSettings(base, { codec: "kvsort", index_share: 4 }).indexShare, 4);
  assertEquals(resolveKvSettings(base, { error_bound: 0.05 }).errorBound, 0.05);
  for (
    const [input, param] of [
      [{ index_share: 4 }, "kv_compression.index_share"],
      [{ codec: "fp16", error_bound: 0.01 }, "kv_compression.error_bound"],
      [{ codec: "zstd", error_mode: "abs" }, "kv_compression.error_mode"],
    ] as const
  ) {
    const err = assertThrows(() => resolveKvSettings(base, input), KvrelayError);
    assertEquals(err.code, "bad_request");
    assertEquals(err.param, param);
  }
});
