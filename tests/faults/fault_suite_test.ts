/**
 * The fault suite: the real services (kvrelay-tiny, two decode instances) over a real
 * nats-server, with faults injected into the processes themselves, and one ledger over every
 * request sent: each ends correct (its greedy reference text) or with a typed error; none wrong,
 * none hung.
 *
 * - a decode instance killed while requests are in their hand-off: they run again on the
 *   other instance and end correct;
 * - a decode instance killed mid-generation: the requests it was generating end with a typed 503
 *   in their stream within 15 s, and the others end correct (how long they take is the
 *   machine's speed, not the fault's, so only the hung-request limit bounds them);
 * - prefill paused (SIGSTOP) past the deadline: 504s at the deadline, and prefill serves again
 *   once continued, skipping the work whose deadline passed;
 * - clients that hang up on long non-streaming requests: decode frees their sequences and
 *   blocks within seconds, and a normal request after them takes the time it took before.
 *
 * The prefill node's link is modelled (10 Gbit/s) with a 1 s round trip, so every hand-off takes about a
 * second: long enough to kill decode inside one, whatever the machine's speed.
 */
import { assert, assertEquals } from "@std/assert";
import type { NatsConnection } from "@nats-io/nats-core";
import { startNatsServer } from "../_harness/nats_server.ts";
import { type Fleet, serviceStats, startFleet, waitInstances } from "../_harness/fleet.ts";
import { connectNats } from "../../shared/nats/connect.ts";
import { complete, Ledger, type Outcome } from "./_ledger.ts";

const ENV = {
  KVRELAY_REQUEST_TIMEOUT_MS: "8000",
  KVRELAY_LINK_GBPS: "10",
  KVRELAY_LINK_RTT_MS: "1000",
  // streams waiting on a paused prefill start (with keep-alives) before the deadline ends them
  KVRELAY_SSE_KEEPALIVE_MS: "3000",
  KVRELAY_CODEC_DEVICE: "cpu",
  KVRELAY_DEVICE: "cpu",
};
const PROMPTS = ["Once upon a time", "The little dog", "In a small town", "Tom and his sister"];
/** No request may take longer than this; past it, it counts as hung. */
const LIMIT_MS = 30_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, ms: number, ok: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(100);
  }
}

/**
 * Kills a decode instance while `inFlight` requests are held by the decode instances and none
 * can end for a while yet; returns how many of them the killed one held (the rest are held by
 * the others, as their stats say right after).
 */
async function killDecode(nc: NatsConnection, fleet: Fleet, name: string, inFlight: number): Promise<number> {
  await fleet.kill(name);
  const held = (await serviceStats(nc, "decode")).reduce((n, s) => n + (s.held as number), 0);
  return inFlight - held;
}

/** Every decode instance holds nothing: no request, no sequence, no block. */
async function decodeIdle(nc: NatsConnection): Promise<boolean> {
  const stats = await serviceStats(nc, "decode");
  return stats.length > 0 && stats.every((s) => s.held === 0 && s.active === 0 && s.usedBlocks === 0);
}

Deno.test({
  name: "fault suite: kills, a pause past the deadline and hang-ups end every request correct or typed",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const t0 = performance.now();
    const nats = await startNatsServer();
    let fleet: Fleet | undefined;
    let nc: NatsConnection | undefined;
    const ledger = new Ledger();
    /** A normal request's time on the idle system (the last step compares against it). */
    let normalMs = 0;
    const figures: Record<string, unknown> = {};
    try {
      fleet = await startFleet(nats, ENV, { decode: 2 });
      const f = fleet;
      nc = await connectNats(nats.url, "kvrelay-test", nats.operator);
      await waitInstances(nc, "decode", 2);
      const model = (await (await fetch(`${f.baseUrl}/v1/models`)).json()).data[0].id as string;
      const body = (i: number, maxTokens: number, stream = false) => ({
        model,
        prompt: PROMPTS[i % PROMPTS.length],
        max_tokens: maxTokens,
        temperature: 0,
        stream,
      });
      // Greedy references, the longest any step asks for; a shorter request's text is their start
      // only when it ends by length, so each step asks for its own length below.
      const refs = new Map<number, string[]>();
      const reference = async (maxTokens: number) => {
        if (!refs.has(maxTokens)) {
          const rs = await Promise.all(
            PROMPTS.map((_, i) => complete(f.baseUrl, body(i, maxTokens), { limitMs: LIMIT_MS })),
          );
          for (const r of rs) assertEquals(r.status, 200, JSON.stringify(r.error));
          refs.set(maxTokens, rs.map((r) => r.text));
        }
        return refs.get(maxTokens)!;
      };

      await t.step(
        "a decode instance killed inside hand-offs: the requests run again on the other",
        async () => {
          const ref = await reference(40);
          const sent = PROMPTS.flatMap((_, i) => [i, i]).map((i) => ({
            i,
            p: complete(f.baseUrl, body(i, 40), { limitMs: LIMIT_MS }),
          }));
          await sleep(300); // opened, prefilled, bundles on the 1 s link: no token for 1 s yet
          const killedAt = performance.now();
          const reruns = await killDecode(nc!, f, "decode-1", sent.length);
          const outs = await Promise.all(sent.map(async ({ i, p }) => ({ i, o: await p })));
          for (const { i, o } of outs) {
            assertEquals(ledger.record(o, ref[i]), "correct", JSON.stringify(o.error));
          }
          figures.rerun_after_kill = {
            reruns,
            ms_to_last_end: Math.round(Math.max(...outs.map(({ o }) => o.endedAt - killedAt))),
          };
          f.start("decode");
          await waitInstances(nc!, "decode", 2);
        },
      );

      await t.step(
        "kill -9 of decode mid-generation: the killed instance's requests end typed within 15 s, the rest correct",
        async () => {
          const ref = await reference(400);
          let streaming = 0;
          const sent = Array.from({ length: 16 }, (_, i) => {
            let first = false;
            const p = complete(f.baseUrl, body(i, 400, true), {
              limitMs: LIMIT_MS,
              onText: () => first || (first = true, streaming++),
            });
            return { i, p };
          });
          await until("every stream has its first token", 20_000, () => streaming === sent.length);
          const killedAt = performance.now();
          const cut = await killDecode(nc!, f, f.running("decode")[0], sent.length);
          const outs = await Promise.all(sent.map(async ({ i, p }) => ({ i, o: await p })));
          const verdicts = outs.map(({ i, o }) => ledger.record(o, ref[i % PROMPTS.length]));
          for (const v of verdicts) assert(v === "correct" || v === "typed", `a request ended ${v}`);
          const typed = outs.filter((_, k) => verdicts[k] === "typed");
          if (cut > 0) assert(typed.length > 0, `the killed instance was generating ${cut} of them`);
          for (const { o } of typed) assertEquals(o.error?.code, "unavailable");
          const typedEnds = typed.map(({ o }) => o.endedAt - killedAt).sort((a, b) => a - b);
          for (const e of typedEnds) {
            assert(e < 15_000, `a typed error came ${Math.round(e)} ms after the kill`);
          }
          figures.kill_mid_generation = {
            on_killed_instance: cut,
            typed_503: typed.length,
            correct: verdicts.filter((v) => v === "correct").length,
            ms_to_typed_error_median: Math.round(typedEnds[typedEnds.length >> 1] ?? 0),
            ms_to_typed_error_max: Math.round(typedEnds.at(-1) ?? 0),
          };
          // the rest runs on the one decode instance left
        },
      );

      await t.step(
        "prefill paused past the deadline: 504 at the deadline, then it serves again",
        async () => {
          const ref = await reference(40);
          const [prefill] = f.running("prefill");
          f.signal(prefill, "SIGSTOP");
          let outs: Outcome[];
          try {
            outs = await Promise.all(
              [0, 1, 2, 3].map((i) => complete(f.baseUrl, body(i, 40, i % 2 === 1), { limitMs: LIMIT_MS })),
            );
          } finally {
            f.signal(prefill, "SIGCONT");
          }
          outs.forEach((o, i) => {
            assertEquals(ledger.record(o, ref[i]), "typed");
            assertEquals(o.error?.code, "timeout");
            // a stream started before the deadline (keep-alives) carries its 504 inside
            assertEquals(o.status, i % 2 === 1 ? 200 : 504);
            assert(o.ms >= 7_000 && o.ms < 15_000, `ended after ${Math.round(o.ms)} ms, deadline 8 s`);
          });
          figures.pause_past_deadline_ms = Math.round(Math.max(...outs.map((o) => o.ms)));
          // The stale work is skipped, and decode let go of the opened requests at their deadline.
          const after = await Promise.all(
            [0, 1].map((i) => complete(f.baseUrl, body(i, 40), { limitMs: LIMIT_MS })),
          );
          after.forEach((o, i) => assertEquals(ledger.record(o, ref[i]), "correct", JSON.stringify(o.error)));
          normalMs = after[0].ms;
          await until("decode holds nothing", 10_000, () => decodeIdle(nc!));
        },
      );

      await t.step(
        "clients that hang up on long non-streaming requests free decode within seconds",
        async () => {
          const ref = await reference(40);
          const hangUp = new AbortController();
          const abandoned = Array.from(
            { length: 16 },
            (_, i) =>
              complete(f.baseUrl, body(i, 1500), { limitMs: LIMIT_MS, signal: hangUp.signal }).catch(() =>
                null
              ),
          );
          await until("decode generates for the 16", 15_000, async () => {
            const s = await serviceStats(nc!, "decode");
            return s.reduce((n, x) => n + (x.active as number), 0) >= 16;
          });
          hangUp.abort();
          await Promise.all(abandoned);
          const hungUpAt = performance.now();
          await until("decode frees every abandoned sequence", 5_000, () => decodeIdle(nc!));
          figures.hang_up_freed_ms = Math.round(performance.now() - hungUpAt);
          const after = await complete(f.baseUrl, body(0, 40), { limitMs: LIMIT_MS });
          assertEquals(ledger.record(after, ref[0]), "correct");
          figures.normal_request_ms = { before: Math.round(normalMs), after_hang_ups: Math.round(after.ms) };
        },
      );

      ledger.assertBalanced();
      figures.suite_s = Math.round((performance.now() - t0) / 100) / 10;
      console.log("fault ledger:", JSON.stringify({ ledger, figures }));
    } finally {
      await nc?.close();
      await fleet?.stop();
      await nats.stop();
    }
  },
});
