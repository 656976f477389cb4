/**
 * Message authentication for a one-way stream of events (a request's token events): the
 * receiver makes a fresh 256-bit key per stream and hands it to the one sender it trusts in
 * the request that opens the stream; the sender puts an HMAC-SHA256 of the subject and the
 * body in the `Kvrelay-Mac` header of every message; the receiver drops any message whose MAC
 * does not match. Broker permissions already keep other clients off the subject; the MAC also
 * keeps out a client that holds some other role's credentials, and binds each body to its
 * stream (the sequence number inside the body orders it).
 *
 * @example
 * ```ts
 * import { newStreamKey, signEvent, verifyEvent } from "./event_mac.ts";
 * const key = newStreamKey();
 * const body = new TextEncoder().encode('{"seq":0}');
 * const mac = signEvent(key, "kvrelay.tokens.x", body);
 * verifyEvent(key, "kvrelay.tokens.x", body, mac); // true
 * ```
 * @module
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { Buffer } from "node:buffer";

/** The header that carries the MAC (base64url). */
export const H_MAC = "Kvrelay-Mac";

/** 32 random bytes as base64url (43 characters). */
export function newStreamKey(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
}

/** 16 random bytes as hex: an id nobody can guess (128 bits). */
export function randomId(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("hex");
}

function mac(key: string, subject: string, body: Uint8Array): Buffer {
  return createHmac("sha256", Buffer.from(key, "base64url")).update(subject).update("\n").update(body)
    .digest();
}

/** The MAC of `body` on `subject` under `key`, for the `Kvrelay-Mac` header. */
export function signEvent(key: string, subject: string, body: Uint8Array): string {
  return mac(key, subject, body).toString("base64url");
}

/** True when `given` is the MAC of `body` on `subject` under `key` (compared in constant time). */
export function verifyEvent(
  key: string,
  subject: string,
  body: Uint8Array,
  given: string | undefined,
): boolean {
  if (!given || given.length !== 43) return false;
  const want = mac(key, subject, body);
  const got = Buffer.from(given, "base64url");
  // only the canonical spelling: the last character's two spare bits would otherwise give four
  // strings for one MAC (this compares the encoding, not the secret)
  if (got.toString("base64url") !== given) return false;
  return got.length === want.length && timingSafeEqual(got, want);
}
