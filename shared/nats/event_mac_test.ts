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
  const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const at = (i: number, flip: number) =>
    mac.slice(0, i) + B64[B64.indexOf(mac[i]) ^ flip] + mac.slice(i + 1);
  for (const bad of [undefined, "", "x", mac.slice(1), at(0, 1), at(42, 4)]) {
    assert(!verifyEvent(key, "kvrelay.tokens.a", body, bad), `MAC '${bad}'`);
  }
  // the same 32 bytes spelled with a spare bit of the last character set: not the sender's MAC
  assert(!verifyEvent(key, "kvrelay.tokens.a", body, at(42, 1)), "a non-canonical spelling");
});

Deno.test("newStreamKey() and randomId() give fresh 256-bit keys and 128-bit hex ids", () => {
  assertMatch(newStreamKey(), /^[A-Za-z0-9_-]{43}$/);
  assertMatch(randomId(), /^[0-9a-f]{32}$/);
  assertEquals(new Set(Array.from({ length: 100 }, randomId)).size, 100);
});
