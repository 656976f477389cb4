/**
 * Overload on the real services (stories260K over a real nats-server): the gateway sheds a burst
 * with 429s past KVRELAY_MAX_INFLIGHT, and a decode instance whose blocks are all reserved
 * refuses at `open`, before prefill, compression and transfer are spent on the request.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import type { NatsConnection } from "@nats-io/nats-core";
import { startNatsServer } from "../_harness/nats_server.ts";
import { serviceStats, startFleet } from "../_harness/fleet.ts";
import { STORIES260K } from "../_harness/paths.ts";
import { connectNats } from "../../shared/nats/connect.ts";
import { requestCall } from "../../shared/nats/call.ts";
import { newStreamKey, randomId } from "../../shared/nats/event_mac.ts";
import { CALLS, SUBJECTS } from "../../shared/handoff/contract.ts";
import { complete, Ledger } from "./_ledger.ts";

const MODEL = { KVRELAY_MODEL: STORIES260K.model, KVRELAY_TOKENIZER: STORIES260K.tokenizer };
const LIMIT_MS = 30_000;
const body = (maxTokens: number, stream = false) => ({
  model: "stories260K",
  prompt: "",
  max_tokens: maxTokens,
  temperature: 0,
  stream,
});

/** Requests the compression of every prefill node has handled. */
async function compressionRequests(nc: NatsConnection): Promise<number> {
  return (await serviceStats(nc, "compression")).reduce((n, s) => n + (s.requests as number), 0);
}

Deno.test({
  name: "KVRELAY_MAX_INFLIGHT=16: 160 concurrent streams get only 200s (correct) and 429s with Retry-After",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const nats = await startNatsServer();
    // a 1 s modelled round trip keeps each admitted stream open while the burst arrives
    const fleet = await startFleet(nats, {
      ...MODEL,
      KVRELAY_MAX_INFLIGHT: "16",
      KVRELAY_LINK_GBPS: "10",
      KVRELAY_LINK_RTT_MS: "1000",
    });
    try {
      const ref = await complete(fleet.baseUrl, body(32), { limitMs: LIMIT_MS });
      assertEquals(ref.status, 200);
      const ledger = new Ledger();
      const outs = await Promise.all(
        Array.from({ length: 160 }, () => complete(fleet.baseUrl, body(32, true), { limitMs: LIMIT_MS })),
      );
      const statuses: Record<number, number> = {};
      for (const o of outs) {
        statuses[o.status] = (statuses[o.status] ?? 0) + 1;
        ledger.record(o, ref.text);
        if (o.status === 429) {
          assertEquals(o.retryAfter, "1");
          assertEquals(o.error?.code, "overloaded");
          assertEquals(o.error?.type, "requests");
        }
      }
      ledger.assertBalanced();
      assertEquals(Object.keys(statuses).sort(), ["200", "429"], JSON.stringify(statuses));
      assert(statuses[200] >= 16, JSON.stringify(statuses));
      assertEquals(ledger.counts.correct, statuses[200], "every admitted stream is correct");
      console.log("160 streams at KVRELAY_MAX_INFLIGHT=16:", JSON.stringify(statuses));
      const after = await complete(fleet.baseUrl, body(32), { limitMs: LIMIT_MS });
      assertEquals(after.text, ref.text, "the places are free again");
    } finally {
      await fleet.stop();
      await nats.stop();
    }
  },
});

Deno.test({
  name: "a full decode refuses at open with a typed 503 and Retry-After; prefill never runs the request",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const nats = await startNatsServer();
    // stories260K: 5 layers x 4 KV heads; a 512-position reservation takes 20 x 32 = 640 blocks
    const fleet = await startFleet(nats, { ...MODEL, KVRELAY_DECODE_MAX_BLOCKS: "1000" });
    const nc = await connectNats(nats.url, "kvrelay-test", nats.operator);
    try {
      const small = await complete(fleet.baseUrl, body(16), { limitMs: LIMIT_MS });
      const big = await complete(fleet.baseUrl, body(400), { limitMs: LIMIT_MS });
      assertEquals([small.status, big.status], [200, 200]);

      // A request that holds 640 blocks from its open on (its prefill never comes).
      const held = await requestCall(nc, CALLS.decodeOpen, SUBJECTS.decodeOpen, {
        requestId: "cmpl-holder",
        sampling: { maxTokens: 511, temperature: 0, topP: 1 },
        tokenSubject: SUBJECTS.tokens(randomId()),
        tokenKey: newStreamKey(),
        kvTokens: 1,
      }, { timeoutMs: 5000 });
      const [stats] = await serviceStats(nc, "decode");
      assertEquals(stats.unreservedBlocks, 1000 - 640);

      const prefilled = await compressionRequests(nc);
      for (const stream of [false, true]) {
        const o = await complete(fleet.baseUrl, body(400, stream), { limitMs: LIMIT_MS }); // needs 20 x 26 = 520
        assertEquals(o.status, 503, JSON.stringify(o.error));
        assertEquals(o.error?.code, "unavailable");
        assertStringIncludes(o.error!.message, "decode is full");
        assertEquals(o.retryAfter, "1");
        assert(o.ms < 10_000, `refused after ${Math.round(o.ms)} ms`);
      }
      assertEquals(await compressionRequests(nc), prefilled, "no hand-off ran for a refused request");
      const fits = await complete(fleet.baseUrl, body(16), { limitMs: LIMIT_MS }); // 20 x 2 = 40
      assertEquals(fits.text, small.text);

      const cancelled = await requestCall(nc, CALLS.decodeControl, held.control, {
        op: "cancel",
        requestId: "cmpl-holder",
      }, { timeoutMs: 5000 });
      assertEquals(cancelled, { cancelled: false, held: true });
      const again = await complete(fleet.baseUrl, body(400), { limitMs: LIMIT_MS });
      assertEquals(again.text, big.text, "room again once the holder is gone");
      const [idle] = await serviceStats(nc, "decode");
      assertEquals([idle.held, idle.usedBlocks, idle.unreservedBlocks], [0, 0, 1000]);
    } finally {
      await nc.close();
      await fleet.stop();
      await nats.stop();
    }
  },
});
