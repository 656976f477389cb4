/**
 * Chunked bundle transfer over core NATS request/reply: the KV hand-off path.
 *
 * Sender side: `sendBundles()` splits each bundle into chunks below the server's
 * `max_payload`, sends them as requests to the receiver's instance subject with a few in
 * flight, and waits for every ack. Then the caller sends a commit (`commitTransfer()`).
 *
 * Receiver side: a `BundleReceiver` is told which transfers to `expect()`; it reassembles
 * chunks, checks size and crc32 of each bundle, and hands whole bundles to the
 * transfer's `onBundle` one at a time, in bundle order of completion. The ack of a bundle's
 * last chunk is sent only after `onBundle` returns, so an acknowledged bundle has landed.
 * A commit names the bundle count; a missing bundle or chunk fails it as `corrupt_bundle`.
 * Memory caps come from configuration, never from the stream.
 * @module
 */
import { crc32 } from "node:zlib";
import { headers as natsHeaders, type MsgHdrs, type NatsConnection } from "@nats-io/nats-core";
import type { ServiceMsg } from "@nats-io/services";
import { asKvrelayError, KvrelayError } from "../errors.ts";
import { requestBytes } from "./request.ts";
import { fromJsonBytes, toJsonBytes } from "./codec.ts";
import { holdUntil, type LinkModel } from "./link.ts";

/** The longest a receiver holds a chunk for the modelled link, whatever its stamp says. */
const MAX_HOLD_MS = 60_000;

export const H_TRANSFER = "Kv-Transfer";
export const H_BUNDLE = "Kv-Bundle";
export const H_CHUNK = "Kv-Chunk";
export const H_BUNDLE_BYTES = "Kv-Bundle-Bytes";
export const H_BUNDLE_CRC32 = "Kv-Bundle-Crc32";
export const H_COMMIT = "Kv-Commit";
/** When the modelled link delivers the message (epoch ms); the receiver holds it until then. */
export const H_ARRIVE = "Kv-Arrive-At";

/** Room left in each message for headers (trace context, transfer ids). */
const HEADER_ROOM = 8 * 1024;

/**
 * A bundle's digest: crc32 as 8 hex digits. It detects damage in transit (an authenticated
 * channel is what keeps out forgery); at ~20 GB/s it costs nothing next to the link.
 */
export function bundleDigest(bytes: Uint8Array): string {
  return (crc32(bytes) >>> 0).toString(16).padStart(8, "0");
}

export interface SendBundlesOptions {
  timeoutMs: number;
  /** Chunks in flight at once. */
  window?: number;
  /** Override of the chunk size (default: server max_payload less header room). */
  maxChunkBytes?: number;
  /** Extra headers for every message (e.g. trace context). */
  headers?: () => MsgHdrs;
  signal?: AbortSignal;
  /** The modelled link every chunk crosses (the commit too). */
  link?: LinkModel;
}

export interface SendStats {
  bundles: number;
  chunks: number;
  bytes: number;
}

/** Sends bundles numbered from `firstIndex`; resolves when every chunk is acknowledged. */
export async function sendBundles(
  nc: NatsConnection,
  subject: string,
  transferId: string,
  bundles: Uint8Array[],
  opts: SendBundlesOptions & { firstIndex?: number },
): Promise<SendStats> {
  const maxPayload = nc.info?.max_payload ?? 1024 * 1024;
  const chunkBytes = Math.max(1024, Math.min(opts.maxChunkBytes ?? Infinity, maxPayload - HEADER_ROOM));
  const window = Math.max(1, opts.window ?? 4);
  const stats: SendStats = { bundles: 0, chunks: 0, bytes: 0 };
  const inFlight = new Set<Promise<void>>();
  let failure: unknown;
  const first = opts.firstIndex ?? 0;
  for (let b = 0; b < bundles.length; b++) {
    const bundle = bundles[b];
    const digest = bundleDigest(bundle);
    const n = Math.max(1, Math.ceil(bundle.length / chunkBytes));
    for (let i = 0; i < n; i++) {
      if (failure) break;
      const h = opts.headers ? opts.headers() : natsHeaders();
      h.set(H_TRANSFER, transferId);
      h.set(H_BUNDLE, String(first + b));
      h.set(H_CHUNK, `${i}/${n}`);
      h.set(H_BUNDLE_BYTES, String(bundle.length));
      h.set(H_BUNDLE_CRC32, digest);
      const part = bundle.subarray(i * chunkBytes, Math.min(bundle.length, (i + 1) * chunkBytes));
      const p = overLink(opts.link, part.length, h, () =>
        requestBytes(nc, subject, part, {
          timeoutMs: opts.timeoutMs,
          headers: h,
          signal: opts.signal,
        }))
        .then(() => {}, (e) => {
          failure ??= e;
        });
      const tracked = p.finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
      stats.chunks++;
      stats.bytes += part.length;
      if (inFlight.size >= window) await Promise.race(inFlight);
    }
    stats.bundles++;
  }
  await Promise.all(inFlight);
  if (failure) throw failure;
  return stats;
}

/** Sends the commit for a transfer and returns the receiver's JSON reply. */
export async function commitTransfer<T>(
  nc: NatsConnection,
  subject: string,
  transferId: string,
  bundleCount: number,
  body: unknown,
  opts: { timeoutMs: number; headers?: () => MsgHdrs; signal?: AbortSignal; link?: LinkModel },
): Promise<T> {
  const h = opts.headers ? opts.headers() : natsHeaders();
  h.set(H_TRANSFER, transferId);
  h.set(H_COMMIT, String(bundleCount));
  const payload = toJsonBytes(body);
  const reply = await overLink(opts.link, payload.length, h, () =>
    requestBytes(nc, subject, payload, {
      timeoutMs: opts.timeoutMs,
      headers: h,
      signal: opts.signal,
    }));
  return fromJsonBytes<T>(reply);
}

/**
 * A request across the modelled link: sent at once, stamped with the time the link would
 * deliver it (the receiver holds it until then); its reply comes back half a round trip later.
 */
async function overLink(
  link: LinkModel | undefined,
  bytes: number,
  h: MsgHdrs,
  send: () => Promise<Uint8Array>,
): Promise<Uint8Array> {
  if (!link) return await send();
  h.set(H_ARRIVE, link.schedule(bytes + HEADER_BYTES_ON_WIRE).toFixed(3));
  const reply = await send();
  await link.reply();
  return reply;
}

/** What a chunk's headers add on the wire (transfer ids, digest, trace context). */
const HEADER_BYTES_ON_WIRE = 256;

export interface ReceivedBundle {
  index: number;
  bytes: Uint8Array;
  headers?: MsgHdrs;
}

export interface TransferHandlers {
  onBundle(bundle: ReceivedBundle): Promise<void>;
  onCommit(bundleCount: number, body: unknown, headers?: MsgHdrs): Promise<unknown>;
  /** Called once if the transfer neither commits nor is dropped within its deadline. */
  onExpire?(): void;
}

interface Assembly {
  total: number;
  digest: string;
  parts: (Uint8Array | undefined)[];
  received: number;
  bytes: number;
}

interface Expected {
  handlers: TransferHandlers;
  assemblies: Map<number, Assembly>;
  delivered: Set<number>;
  chain: Promise<void>;
  timer: number;
  failed?: KvrelayError;
}

/** Reassembles and verifies bundles for the transfers it was told to expect. */
export class BundleReceiver {
  #expected = new Map<string, Expected>();
  #maxBundleBytes: number;

  constructor(opts: { maxBundleBytes: number }) {
    this.#maxBundleBytes = opts.maxBundleBytes;
  }

  /** Registers a transfer; it is dropped (and `onExpire` called) after `timeoutMs`. */
  expect(transferId: string, handlers: TransferHandlers, timeoutMs: number): void {
    if (this.#expected.has(transferId)) {
      throw new KvrelayError("bad_request", `transfer ${transferId} is already open`);
    }
    // Deno's timers are numbers; the npm type packages in the graph say otherwise.
    const timer = Number(setTimeout(() => {
      if (this.#expected.delete(transferId)) handlers.onExpire?.();
    }, timeoutMs));
    Deno.unrefTimer(timer);
    this.#expected.set(transferId, {
      handlers,
      assemblies: new Map(),
      delivered: new Set(),
      chain: Promise.resolve(),
      timer,
    });
  }

  /** Forgets a transfer (request cancelled or finished). */
  drop(transferId: string): void {
    const e = this.#expected.get(transferId);
    if (!e) return;
    clearTimeout(e.timer);
    this.#expected.delete(transferId);
  }

  get openTransfers(): number {
    return this.#expected.size;
  }

  /** The endpoint handler for the instance's ingest subject. */
  handle = async (msg: ServiceMsg): Promise<unknown> => {
    const h = msg.headers;
    const transferId = h?.get(H_TRANSFER) ?? "";
    const e = this.#expected.get(transferId);
    if (!e) throw new KvrelayError("not_found", `no open transfer '${transferId}' on this instance`);
    const arrive = h?.get(H_ARRIVE);
    if (arrive) {
      const at = Number(arrive);
      if (!Number.isFinite(at)) throw corrupt(`bad ${H_ARRIVE} header`);
      await holdUntil(at, MAX_HOLD_MS); // the modelled link has not delivered it yet
    }
    if (e.failed) throw e.failed;
    const commit = h?.get(H_COMMIT);
    if (commit) return await this.#commit(transferId, e, commit, msg);
    return await this.#chunk(e, msg);
  };

  async #chunk(e: Expected, msg: ServiceMsg): Promise<unknown> {
    const h = msg.headers!;
    const index = intHeader(h, H_BUNDLE, 0, 1 << 20);
    const [iStr, nStr] = (h.get(H_CHUNK) ?? "").split("/");
    const total = intHeader(h, H_BUNDLE_BYTES, 0, this.#maxBundleBytes);
    const n = parseIntStrict(nStr, 1, Math.max(1, Math.ceil(total / 1024) + 1), H_CHUNK);
    const i = parseIntStrict(iStr, 0, n - 1, H_CHUNK);
    const digest = h.get(H_BUNDLE_CRC32);
    if (!/^[0-9a-f]{8}$/.test(digest)) throw corrupt(`bad ${H_BUNDLE_CRC32} header`);
    if (e.delivered.has(index)) return { ok: true, duplicate: true };
    let a = e.assemblies.get(index);
    if (!a) {
      a = { total, digest, parts: new Array(n), received: 0, bytes: 0 };
      e.assemblies.set(index, a);
    }
    if (a.total !== total || a.digest !== digest || a.parts.length !== n) {
      throw corrupt(`chunk ${i} of bundle ${index} disagrees with earlier chunks`);
    }
    if (!a.parts[i]) {
      a.received++;
      a.bytes += msg.data.length;
    } else {
      a.bytes += msg.data.length - a.parts[i]!.length;
    }
    a.parts[i] = msg.data;
    if (a.bytes > a.total) throw corrupt(`bundle ${index} is larger than its declared ${a.total} bytes`);
    if (a.received < n) return { ok: true };
    // Complete: verify, then deliver in order of completion, one at a time.
    e.assemblies.delete(index);
    if (a.bytes !== a.total) throw corrupt(`bundle ${index} has ${a.bytes} bytes, declared ${a.total}`);
    const bytes = concat(a.parts as Uint8Array[], a.total);
    if (bundleDigest(bytes) !== a.digest) throw corrupt(`bundle ${index} failed its crc32 check`);
    e.delivered.add(index);
    const run = e.chain.then(() => e.handlers.onBundle({ index, bytes, headers: h }));
    e.chain = run.catch((err) => {
      e.failed = asKvrelayError(err);
    });
    await run;
    return { ok: true, bundle: index };
  }

  async #commit(transferId: string, e: Expected, commit: string, msg: ServiceMsg): Promise<unknown> {
    const count = parseIntStrict(commit, 0, 1 << 20, H_COMMIT);
    await e.chain;
    if (e.failed) throw e.failed;
    for (let b = 0; b < count; b++) {
      if (!e.delivered.has(b)) {
        const a = e.assemblies.get(b);
        const why = a
          ? `${a.parts.length - a.received} of ${a.parts.length} chunks missing`
          : "never arrived";
        this.drop(transferId);
        throw corrupt(`bundle ${b} of transfer ${transferId}: ${why}`);
      }
    }
    if (e.delivered.size !== count) {
      this.drop(transferId);
      throw corrupt(`transfer ${transferId} delivered ${e.delivered.size} bundles, commit says ${count}`);
    }
    let body: unknown = {};
    if (msg.data.length) {
      try {
        body = fromJsonBytes(msg.data);
      } catch {
        throw new KvrelayError("bad_request", "commit body is not JSON");
      }
    }
    this.drop(transferId);
    return await e.handlers.onCommit(count, body, msg.headers);
  }
}

function corrupt(message: string): KvrelayError {
  return new KvrelayError("corrupt_bundle", message);
}

function intHeader(h: MsgHdrs, name: string, min: number, max: number): number {
  return parseIntStrict(h.get(name), min, max, name);
}

function parseIntStrict(s: string | undefined, min: number, max: number, name: string): number {
  if (!s || !/^\d{1,10}$/.test(s)) throw corrupt(`bad ${name} header '${s ?? ""}'`);
  const v = Number(s);
  if (v < min || v > max) throw corrupt(`${name} ${v} out of range [${min}, ${max}]`);
  return v;
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  // A plain Uint8Array view, not the client's Buffer subclass.
  if (parts.length === 1) return new Uint8Array(parts[0].buffer, parts[0].byteOffset, parts[0].length);
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
