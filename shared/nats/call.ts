/**
 * The typed edges of a contract call (shared/handoff/contract.ts `CALLS`): a receiver parses
 * a body once with `parseBody` (not JSON, or not the declared shape: a 400 naming the field);
 * a sender runs `requestCall`, whose body is type-checked and whose reply is checked before it
 * is returned. `publishSafely` is the one way to publish from a timer or a callback: a publish
 * that fails (a closed connection, a subject the server refuses) is logged, never thrown into
 * code that cannot catch it.
 *
 * @example
 * ```ts
 * import { CALLS, SUBJECTS } from "../handoff/contract.ts";
 * // receiver: const req = parseBody(CALLS.decodeOpen.request, msg.data, CALLS.decodeOpen.name);
 * // sender:   const open = await requestCall(nc, CALLS.decodeOpen, SUBJECTS.decodeOpen, req, { timeoutMs: 5000 });
 * ```
 * @module
 */
import type { NatsConnection, PublishOptions } from "@nats-io/nats-core";
import { KvrelayError } from "../errors.ts";
import { toJsonBytes } from "./codec.ts";
import { requestBytes, type RequestOptions } from "./request.ts";
import type { Check } from "./validate.ts";

const dec = new TextDecoder("utf-8", { fatal: true });

/** A body as the check declares it, or a 400: bytes that are not UTF-8 JSON, or the wrong shape. */
export function parseBody<T>(check: Check<T>, bytes: Uint8Array, what: string): T {
  let value: unknown;
  try {
    value = JSON.parse(dec.decode(bytes));
  } catch {
    throw new KvrelayError("bad_request", `the ${what} body is not JSON`);
  }
  return check(value, what);
}

/** A contract call's request and reply types, for `requestCall`. */
export interface CallSpec<Req, Rep> {
  readonly name: string;
  readonly request: Check<Req>;
  readonly reply: Check<Rep>;
}

/**
 * Sends a typed request and returns the checked reply. A reply that fails its check is
 * `corrupt_bundle`: the peer broke the contract, and nothing it sent is used.
 */
export async function requestCall<Req, Rep>(
  nc: NatsConnection,
  call: CallSpec<Req, Rep>,
  subject: string,
  body: Req,
  opts: RequestOptions,
): Promise<Rep> {
  const bytes = await requestBytes(nc, subject, toJsonBytes(body), opts);
  try {
    return parseBody(call.reply, bytes, `${call.name} reply`);
  } catch (err) {
    throw new KvrelayError("corrupt_bundle", (err as Error).message, { cause: err });
  }
}

/** Publishes, or logs why it could not; true when the message was handed to the connection. */
export function publishSafely(
  nc: NatsConnection,
  subject: string,
  payload: Uint8Array,
  opts?: PublishOptions,
): boolean {
  try {
    nc.publish(subject, payload, opts);
    return true;
  } catch (err) {
    console.error(`[nats] publish to '${subject.slice(0, 80)}' failed: ${(err as Error).message}`);
    return false;
  }
}
