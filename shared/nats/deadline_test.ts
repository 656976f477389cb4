import { assert, assertEquals } from "@std/assert";
import { headers } from "@nats-io/nats-core";
import {
  deadlineFromHeaders,
  deadlineIn,
  H_SENT_AT,
  H_TIMEOUT,
  setDeadlineHeader,
  timeLeft,
} from "./deadline.ts";

Deno.test("setDeadlineHeader() carries the time left, and deadlineFromHeaders() turns it back", () => {
  const h = headers();
  setDeadlineHeader(h, deadlineIn(5000));
  const sent = Number(h.get(H_TIMEOUT));
  assert(sent > 4900 && sent <= 5000, `header ${sent}`);
  const left = timeLeft(deadlineFromHeaders(h, 120_000));
  assert(left > 4800 && left <= 5000, `left ${left}`);
});

Deno.test("deadlineFromHeaders() never extends the receiver's own limit", () => {
  const h = headers();
  h.set(H_TIMEOUT, "999999999");
  assert(timeLeft(deadlineFromHeaders(h, 1000)) <= 1000);
});

Deno.test("deadlineFromHeaders() takes the limit when the header is absent or malformed", () => {
  for (const v of [undefined, "", "-5", "1e3", "12.5", "soon"]) {
    const h = headers();
    if (v !== undefined) h.set(H_TIMEOUT, v);
    const left = timeLeft(deadlineFromHeaders(h, 2000));
    assert(left > 1900 && left <= 2000, `${v}: ${left}`);
  }
  assert(timeLeft(deadlineFromHeaders(undefined, 2000)) > 1900);
});

Deno.test("timeLeft() is 0 once the deadline passed, and a spent deadline travels as 0", () => {
  const d = deadlineIn(-10);
  assertEquals(timeLeft(d), 0);
  const h = headers();
  setDeadlineHeader(h, d);
  assertEquals(h.get(H_TIMEOUT), "0");
  assertEquals(timeLeft(deadlineFromHeaders(h, 1000)), 0);
});

Deno.test("deadlineFromHeaders() counts the time a message waited on the way, never a negative wait", () => {
  const h = headers();
  h.set(H_TIMEOUT, "3000");
  h.set(H_SENT_AT, String(Date.now() - 5000)); // sat in a paused process's socket for 5 s
  assertEquals(timeLeft(deadlineFromHeaders(h, 120_000)), 0);
  h.set(H_SENT_AT, String(Date.now() - 1000));
  const left = timeLeft(deadlineFromHeaders(h, 120_000));
  assert(left > 1900 && left <= 2000, `left ${left}`);
  h.set(H_SENT_AT, String(Date.now() + 60_000)); // the receiver's clock is behind: no wait counted
  assert(timeLeft(deadlineFromHeaders(h, 120_000)) > 2900);
});
