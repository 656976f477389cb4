/**
 * One deadline per request. The gateway sets it when a completion starts; every NATS message
 * of the request's hops carries the time that is left in the `Kvrelay-Timeout` header, in ms,
 * and when it was sent (`Kvrelay-Sent-At`, ms since the epoch). Each receiver turns them into a
 * deadline of its own on arrival and hands every later hop what is left of it. The time the
 * message waited on the way (in a queue, or in the socket of a paused process) counts against
 * it, as the two clocks see it: with hosts in sync (NTP) a backlog is found expired, not
 * worked on; a receiver whose clock is behind counts no wait, as gRPC's `grpc-timeout` does.
 * A receiver never lets a header extend its own limit.
 *
 * A `Deadline` is a point on this process's monotonic clock (`performance.now()`).
 *
 * @example
 * ```ts
 * import { headers } from "@nats-io/nats-core";
 * import { deadlineFromHeaders, deadlineIn, setDeadlineHeader, timeLeft } from "./deadline.ts";
 * const d = deadlineIn(30_000);
 * const h = headers();
 * setDeadlineHeader(h, d); // Kvrelay-Timeout: 30000 (or a ms less)
 * const there = deadlineFromHeaders(h, 120_000); // the receiver's own deadline
 * timeLeft(there) <= 30_000; // true
 * ```
 * @module
 */
import type { MsgHdrs } from "@nats-io/nats-core";

/** The header with the ms a request has left when the message was sent. */
export const H_TIMEOUT = "Kvrelay-Timeout";
/** The header with the sender's wall-clock time of sending, in ms since the epoch. */
export const H_SENT_AT = "Kvrelay-Sent-At";

/** A point on this process's `performance.now()` clock. */
export type Deadline = number;

/** The deadline `ms` from now. */
export function deadlineIn(ms: number): Deadline {
  return performance.now() + ms;
}

/** Whole ms left until `d`; 0 once it has passed. */
export function timeLeft(d: Deadline): number {
  return Math.max(0, Math.floor(d - performance.now()));
}

/** Puts the time left until `d`, and the time of sending, in `h`. */
export function setDeadlineHeader(h: MsgHdrs, d: Deadline): void {
  h.set(H_TIMEOUT, String(timeLeft(d)));
  h.set(H_SENT_AT, String(Date.now()));
}

/**
 * The deadline a message carries, as of its arrival: its `Kvrelay-Timeout` less the time it
 * waited since `Kvrelay-Sent-At` (none when this clock is behind), never more than `limitMs`
 * (this process's own limit); `limitMs` when the timeout is absent or malformed.
 */
export function deadlineFromHeaders(h: MsgHdrs | undefined, limitMs: number): Deadline {
  const raw = h?.get(H_TIMEOUT) ?? "";
  if (!/^\d{1,12}$/.test(raw)) return deadlineIn(limitMs);
  const sent = h?.get(H_SENT_AT) ?? "";
  const waited = /^\d{1,15}$/.test(sent) ? Math.max(0, Date.now() - Number(sent)) : 0;
  return deadlineIn(Math.min(Number(raw) - waited, limitMs));
}
