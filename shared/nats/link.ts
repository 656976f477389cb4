/**
 * A modelled network link for the hand-off, so 1, 10 and 100 Gbit/s can be studied honestly on
 * one machine: bytes handed to the link leave one after another at `gbps` (a token bucket with
 * no burst, kept as the time the link becomes free), and each message reaches the far end half
 * a round trip after its last byte left. One link per sending process: concurrent transfers
 * share it, as they share a NIC. The schedule is absolute, so a timer that fires late delays
 * that message only, never the ones behind it.
 *
 * The transfer path uses `schedule()`: a chunk is sent at once, stamped with the time the link
 * would deliver it, and the receiver holds it until then (`holdUntil`). So a hand-off takes the
 * longer of the modelled link and what the machine really does (serializing, copying through
 * the NATS server), never their sum. Sender and receiver share one clock: the epoch time in ms
 * (`performance.timeOrigin + performance.now()`), the same in every process of a machine.
 * @module
 */

/** Time as the link sees it (milliseconds); a test gives a fake one. */
export interface LinkClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

/** Epoch time in ms with sub-ms resolution: comparable between processes of one machine. */
export const epochNow = (): number => performance.timeOrigin + performance.now();

export const realClock: LinkClock = {
  now: epochNow,
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** Waits until epoch time `at` (a chunk's modelled arrival), at most `maxMs`. */
export async function holdUntil(at: number, maxMs: number): Promise<void> {
  const wait = Math.min(at - epochNow(), maxMs);
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
}

export interface LinkOptions {
  /** Bandwidth in Gbit/s (10^9 bits a second). */
  gbps: number;
  /** Round trip in ms; each direction takes half. Default 0. */
  rttMs?: number;
}

export class LinkModel {
  readonly gbps: number;
  readonly rttMs: number;
  readonly #bytesPerMs: number;
  readonly #clock: LinkClock;
  /** When the link has sent everything handed to it so far. */
  #free = -Infinity;
  /** Bytes handed to the link. */
  bytes = 0;

  constructor(opts: LinkOptions, clock: LinkClock = realClock) {
    if (!(opts.gbps > 0) || !Number.isFinite(opts.gbps)) {
      throw new RangeError(`bad link speed ${opts.gbps} Gbit/s`);
    }
    const rtt = opts.rttMs ?? 0;
    if (!(rtt >= 0) || !Number.isFinite(rtt)) throw new RangeError(`bad link round trip ${rtt} ms`);
    this.gbps = opts.gbps;
    this.rttMs = rtt;
    this.#bytesPerMs = (opts.gbps * 1e9) / 8 / 1000;
    this.#clock = clock;
  }

  /** Milliseconds the link needs to put `bytes` on the wire. */
  serializationMs(bytes: number): number {
    return bytes / this.#bytesPerMs;
  }

  /** Hands `bytes` to the link now; returns when they reach the far end (clock time). */
  schedule(bytes: number): number {
    const start = Math.max(this.#clock.now(), this.#free);
    this.#free = start + bytes / this.#bytesPerMs;
    this.bytes += bytes;
    return this.#free + this.rttMs / 2;
  }

  /** Resolves when a message of `bytes` handed to the link now has reached the far end. */
  async transmit(bytes: number): Promise<void> {
    const wait = this.schedule(bytes) - this.#clock.now();
    if (wait > 0) await this.#clock.sleep(wait);
  }

  /** Resolves when a reply sent now from the far end has come back (half a round trip). */
  async reply(): Promise<void> {
    if (this.rttMs > 0) await this.#clock.sleep(this.rttMs / 2);
  }
}
