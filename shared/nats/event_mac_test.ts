import { assert, assertEquals, assertMatch } from "@std/assert";
import { newStreamKey, randomId, signEvent, verifyEvent } from "./event_mac.ts";

const body = new TextEncoder().encode('{"type":"token","seq":0,"id":5,"text":" hi"}');

Deno.test("verifyEvent() accepts the sender's MAC and nothing else", () => {
  const key = newStreamKey();
  const mac = signEvent(key, "kvrelay.tokens.a", body);
  assert(verifyEvent(key, "kvrelay.tokens.a", body, mac));
  assert(!verifyEvent(newStreamKey(), "kvrelay.tokens.a", body, mac), "another key");
  assert(!verifyEvent(key, "kvrelay.tokens.b", body, mac), "another subject");
  const changed = body.slice();
  changed[changed.length - 3] ^= 1;
  assert(!verifyEvent(key, "kvrelay.tokens.a", changed, mac), "a changed body");
  for (const bad of [undefined, "", "x", mac.slice(1), mac.slice(0, -1) + (mac.endsWith("A") ? "B" : "A")]) {
    assert(!verifyEvent(key, "kvrelay.tokens.a", body, bad), `MAC '${bad}'`);
  }
});

Deno.test("newStreamKey() and randomId() give fresh 256-bit keys and 128-bit hex ids", () => {
  assertMatch(newStreamKey(), /^[A-Za-z0-9_-]{43}$/);
  assertMatch(randomId(), /^[0-9a-f]{32}$/);
  assertEquals(new Set(Array.from({ length: 100 }, randomId)).size, 100);
});
