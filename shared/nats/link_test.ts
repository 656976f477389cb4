import { assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { type LinkClock, LinkModel } from "./link.ts";

/** A clock that only moves when someone sleeps: sleeps resolve in time order. */
function fakeClock(): LinkClock & { run(): Promise<void> } {
  let t = 0;
  const sleepers: { at: number; resolve: () => void }[] = [];
  return {
    now: () => t,
    sleep(ms) {
      return new Promise((resolve) => sleepers.push({ at: t + ms, resolve }));
    },
    async run() {
      while (sleepers.length) {
        await Promise.resolve(); // let callers hand the next message over
        sleepers.sort((a, b) => a.at - b.at);
        const s = sleepers.shift()!;
        t = Math.max(t, s.at);
        s.resolve();
        await new Promise((r) => setTimeout(r, 0));
      }
    },
  };
}

Deno.test("LinkModel.transmit() paces messages at the link speed: arrival = bytes / bandwidth + rtt / 2", async () => {
  const clock = fakeClock();
  const link = new LinkModel({ gbps: 1, rttMs: 2 }, clock);
  const arrivals: number[] = [];
  const sends = [1_000_000, 1_000_000, 500_000].map((b) =>
    link.transmit(b).then(() => arrivals.push(clock.now()))
  );
  await clock.run();
  await Promise.all(sends);
  // 1 Gbit/s = 125,000 bytes per ms: 8 ms, 16 ms, 20 ms of serialization, plus 1 ms one way
  assertEquals(arrivals, [9, 17, 21]);
  assertEquals(link.bytes, 2_500_000);
});

Deno.test("LinkModel.transmit() does not bank idle time: a message after a pause waits its own bytes", async () => {
  const clock = fakeClock();
  const link = new LinkModel({ gbps: 10 }, clock);
  await Promise.all([link.transmit(1_250_000), clock.run()]); // 1 ms at 10 Gbit/s
  assertEquals(clock.now(), 1);
  await Promise.all([clock.sleep(50), clock.run()]); // the link idles
  const t0 = clock.now();
  await Promise.all([link.transmit(2_500_000), clock.run()]);
  assertAlmostEquals(clock.now() - t0, 2, 1e-9);
});

Deno.test("LinkModel.transmit() on the real clock stays within 10% of bytes / bandwidth", async () => {
  // 2.5 MB at 0.01 Gbit/s is 2 s: long enough that a timer late under a loaded CI stays inside 10%
  const link = new LinkModel({ gbps: 0.01 });
  const t0 = performance.now();
  await Promise.all(Array.from({ length: 10 }, () => link.transmit(250_000)));
  const ms = performance.now() - t0;
  const ideal = link.serializationMs(2_500_000);
  assertAlmostEquals(ideal, 2000, 1e-9);
  // timers may fire a fraction of a ms early or some late: within 10% either way
  if (Math.abs(ms - ideal) > 0.1 * ideal) {
    throw new Error(`link took ${ms.toFixed(1)} ms for ${ideal} ms of bytes`);
  }
});

Deno.test("LinkModel() rejects a bad speed or round trip", () => {
  assertThrows(() => new LinkModel({ gbps: 0 }), RangeError);
  assertThrows(() => new LinkModel({ gbps: 1, rttMs: -1 }), RangeError);
});
