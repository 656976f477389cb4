/**
 * Hostile messages against the real services (prefill, decode, gateway as processes) on a real
 * nats-server that refuses anonymous clients: random bytes, `null`, `{}`, wrong types, bad
 * subjects, forged bundles with valid digests and forged token events. Each one gets a typed
 * error or is refused at the broker; nothing crashes; and afterwards a normal request gives
 * the model's known greedy text.
 */
import { assert, assertEquals, assertInstanceOf, assertStringIncludes } from "@std/assert";
import { headers as natsHeaders, type NatsConnection } from "@nats-io/nats-core";
import { type NatsServer, startNatsServer } from "../_harness/nats_server.ts";
import { startServices } from "../_harness/services.ts";
import { STORIES260K, STORIES260K_GREEDY } from "../_harness/paths.ts";
import { KvrelayError } from "../../shared/errors.ts";
import { connectNats } from "../../shared/nats/connect.ts";
import { requestBytes } from "../../shared/nats/request.ts";
import { toJsonBytes } from "../../shared/nats/codec.ts";
import { H_MAC, newStreamKey, randomId, signEvent, verifyEvent } from "../../shared/nats/event_mac.ts";
import {
  bundleDigest,
  H_BUNDLE,
  H_BUNDLE_BYTES,
  H_BUNDLE_CRC32,
  H_CHUNK,
  H_COMMIT,
  H_TRANSFER,
} from "../../shared/nats/transfer.ts";
import { CALLS, EVENTS, SUBJECTS, type TokenEvent } from "../../shared/handoff/contract.ts";
import { parseBody, requestCall } from "../../shared/nats/call.ts";
import type { Role } from "../../shared/nats/permissions.ts";

const ENV = {
  KVRELAY_MODEL: STORIES260K.model,
  KVRELAY_TOKENIZER: STORIES260K.tokenizer,
  // a slot that never commits expires soon enough to watch it happen
  KVRELAY_REQUEST_TIMEOUT_MS: "4000",
};

function randomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

const JUNK: [string, Uint8Array][] = [
  ["random bytes", randomBytes(512, 7)],
  ["empty", new Uint8Array(0)],
  ["null", toJsonBytes(null)],
  ["{}", toJsonBytes({})],
  ["[]", toJsonBytes([])],
  ["a string", toJsonBytes("open")],
  ["a number", toJsonBytes(42)],
  ["deep nesting", new TextEncoder().encode("[".repeat(5000) + "]".repeat(5000))],
];

/** The error a request ends in: a `KvrelayError` rebuilt from the service's reply or the broker's refusal. */
async function failure(
  nc: NatsConnection,
  subject: string,
  body: Uint8Array,
  h: Record<string, string> = {},
): Promise<KvrelayError> {
  const headers = natsHeaders();
  for (const [k, v] of Object.entries(h)) headers.set(k, v);
  try {
    await requestBytes(nc, subject, body, { timeoutMs: 5000, headers });
  } catch (e) {
    assertInstanceOf(e, KvrelayError);
    return e;
  }
  throw new Error(`${subject} accepted a hostile message`);
}

async function expectBadRequest(nc: NatsConnection, subject: string, what: string, body: Uint8Array) {
  const e = await failure(nc, subject, body);
  assertEquals(e.code, "bad_request", `${what} on ${subject}: ${e.code} ${e.message}`);
}

/** A decode slot opened the way the gateway opens one, with a token subject this test reads. */
async function openSlot(gateway: NatsConnection, requestId: string) {
  const tokenSubject = SUBJECTS.tokens(randomId());
  const tokenKey = newStreamKey();
  const events: { ev: TokenEvent; signed: boolean }[] = [];
  const sub = gateway.subscribe(tokenSubject, {
    callback: (_e, m) => {
      events.push({
        ev: parseBody(EVENTS.token.check, m.data, "event"),
        signed: verifyEvent(tokenKey, tokenSubject, m.data, m.headers?.get(H_MAC)),
      });
    },
  });
  await gateway.flush();
  const reply = await requestCall(gateway, CALLS.decodeOpen, SUBJECTS.decodeOpen, {
    requestId,
    sampling: { maxTokens: 4, temperature: 0, topP: 1 },
    tokenSubject,
    tokenKey,
  }, { timeoutMs: 5000 });
  return { reply, events, sub, tokenSubject, tokenKey };
}

async function completion(baseUrl: string, stream: boolean): Promise<string> {
  const r = await fetch(`${baseUrl}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "stories260K", prompt: "", max_tokens: 64, temperature: 0, stream }),
  });
  assertEquals(r.status, 200);
  if (!stream) return (await r.json()).choices[0].text;
  const text = await r.text();
  return text.split("\n").filter((l) => l.startsWith("data: {")).map((l) => JSON.parse(l.slice(6)))
    .map((c) => c.choices?.[0]?.text ?? "").join("");
}

Deno.test({
  name: "hostile messages get typed errors or broker refusals, crash nothing, and leave requests correct",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const nats: NatsServer = await startNatsServer({ jetstream: false, anonymous: "refused" });
    const svc = await startServices(nats, ENV);
    const as = (role: Role) => connectNats(nats.url, `kvrelay-${role}`, nats.authAs(role));
    const gateway = await as("gateway");
    const prefill = await as("prefill");
    const decode = await as("decode");
    const operator = await connectNats(nats.url, "operator", nats.operator);
    try {
      assert((await completion(svc.baseUrl, false)).startsWith(STORIES260K_GREEDY));

      await t.step("decode.open: junk, wrong types and bad subjects are 400s", async () => {
        for (const [what, body] of JUNK) await expectBadRequest(gateway, SUBJECTS.decodeOpen, what, body);
        const good = {
          requestId: "cmpl-hostile",
          sampling: { maxTokens: 4, temperature: 0, topP: 1 },
          tokenSubject: SUBJECTS.tokens(randomId()),
          tokenKey: newStreamKey(),
        };
        const bad: [string, unknown][] = [
          ["tokenSubject ''", { ...good, tokenSubject: "" }],
          ["tokenSubject '>'", { ...good, tokenSubject: ">" }],
          ["tokenSubject of another service", { ...good, tokenSubject: SUBJECTS.prefillRun }],
          ["tokenSubject with a space", { ...good, tokenSubject: "kvrelay.tokens.a b" }],
          ["no tokenKey", { ...good, tokenKey: undefined }],
          ["sampling null", { ...good, sampling: null }],
          ["maxTokens a string", { ...good, sampling: { ...good.sampling, maxTokens: "4" } }],
          ["temperature NaN (null in JSON)", { ...good, sampling: { ...good.sampling, temperature: NaN } }],
          ["requestId an object", { ...good, requestId: { $gt: "" } }],
        ];
        for (const [what, body] of bad) {
          await expectBadRequest(gateway, SUBJECTS.decodeOpen, what, toJsonBytes(body));
        }
      });

      await t.step("prefill.run: junk and wrong types are typed errors", async () => {
        for (const [what, body] of JUNK) {
          const e = await failure(gateway, SUBJECTS.prefillRun, body);
          assert(e.status >= 400, `${what}: ${e.code}`);
        }
      });

      await t.step(
        "the broker refuses what a role may not send: forged bundles, forged tokens, requests",
        async () => {
          const slot = await openSlot(gateway, "cmpl-broker");
          const cases: [NatsConnection, string, string][] = [
            [gateway, slot.reply.ingest, "gateway → ingest"],
            [decode, SUBJECTS.prefillRun, "decode → prefill.run"],
            [decode, SUBJECTS.decodeOpen, "decode → decode.open"],
            [prefill, SUBJECTS.decodeOpen, "prefill → decode.open"],
          ];
          for (const [nc, subject, what] of cases) {
            const e = await failure(nc, subject, toJsonBytes({}));
            assertStringIncludes(e.message, "Permissions Violation", what);
          }
          // a token event from prefill's credentials never reaches the token subject
          prefill.publish(slot.tokenSubject, toJsonBytes({ type: "token", seq: 0, id: 1, text: "x" }));
          await prefill.flush();
          await requestBytes(
            gateway,
            slot.reply.control,
            toJsonBytes({ op: "cancel", requestId: "cmpl-broker" }),
            {
              timeoutMs: 5000,
            },
          );
          assertEquals(slot.events.length, 0);
          slot.sub.unsubscribe();
        },
      );

      await t.step(
        "decode ingest and control: forged bundles with valid digests and bad commits fail typed",
        async () => {
          const slot = await openSlot(gateway, "cmpl-forged");
          for (const [what, body] of JUNK) await expectBadRequest(gateway, slot.reply.control, what, body);
          const unknown = await failure(
            prefill,
            slot.reply.ingest,
            randomBytes(64, 1),
            { [H_TRANSFER]: "nope" },
          );
          assertEquals(unknown.code, "not_found");
          const forged = randomBytes(4096, 3);
          const chunk = (h: Record<string, string>) => ({
            [H_TRANSFER]: "cmpl-forged",
            [H_BUNDLE]: "0",
            [H_CHUNK]: "0/1",
            [H_BUNDLE_BYTES]: String(forged.length),
            [H_BUNDLE_CRC32]: bundleDigest(forged),
            ...h,
          });
          const badHeaders: Record<string, string>[] = [
            { [H_CHUNK]: "9/1" },
            { [H_BUNDLE_BYTES]: "-1" },
            { [H_BUNDLE_CRC32]: "zz" },
          ];
          for (const h of badHeaders) {
            const e = await failure(prefill, slot.reply.ingest, forged, chunk(h));
            assertEquals(e.code, "corrupt_bundle", JSON.stringify(h));
          }
          const e = await failure(prefill, slot.reply.ingest, forged, chunk({}));
          assertEquals(e.code, "corrupt_bundle", `a forged bundle with a valid digest: ${e.message}`);
          const commit = await failure(
            prefill,
            slot.reply.ingest,
            toJsonBytes({ requestId: "cmpl-forged", firstToken: 1, nPos: 1 }),
            { [H_TRANSFER]: "cmpl-forged", [H_COMMIT]: "5" },
          );
          assertEquals(commit.code, "corrupt_bundle");
          slot.sub.unsubscribe();

          // a slot whose transfer never commits expires with a signed `timeout`, and decode lives on
          const idle = await openSlot(gateway, "cmpl-idle");
          const commitJunk = await failure(
            prefill,
            idle.reply.ingest,
            toJsonBytes(null),
            { [H_TRANSFER]: "cmpl-idle", [H_COMMIT]: "0" },
          );
          assertEquals(commitJunk.code, "bad_request");
          const idle2 = await openSlot(gateway, "cmpl-idle2");
          const deadline = Date.now() + 30_000;
          // signed heartbeats come while decode holds the slot; then the one error
          const last = () => idle2.events.filter((x) => x.ev.type !== "heartbeat");
          while (!last().length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
          assertEquals(last().map((x) => [x.ev.type, x.signed]), [["error", true]]);
          assertEquals((last()[0].ev as { code: string }).code, "timeout");
          assert(idle2.events.every((x) => x.signed));
          idle.sub.unsubscribe();
          idle2.sub.unsubscribe();
        },
      );

      await t.step("forged token events on a request's own subject never reach the client", async () => {
        // The operator (every permission, as a leaked admin account would have) learns each
        // token subject from decode.open and floods it with unsigned and wrongly signed events.
        let forged = 0;
        const spy = operator.subscribe(SUBJECTS.decodeOpen, {
          callback: (_e, m) => {
            const { tokenSubject } = JSON.parse(m.string());
            const wrongKey = newStreamKey();
            for (let seq = 0; seq < 8; seq++) {
              const body = toJsonBytes({ type: "token", seq, id: 1, text: " INJECTED-BY-ATTACKER" });
              const h = natsHeaders();
              if (seq % 2) h.set(H_MAC, signEvent(wrongKey, tokenSubject, body));
              operator.publish(tokenSubject, body, { headers: h });
              forged++;
            }
          },
        });
        await operator.flush();
        for (const stream of [true, false, true]) {
          const text = await completion(svc.baseUrl, stream);
          assert(!text.includes("INJECTED"), text);
          assert(text.startsWith(STORIES260K_GREEDY), text);
        }
        const deadline = Date.now() + 10_000;
        while (forged < 24 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        assertEquals(forged, 24, "the attacker saw every request");
        spy.unsubscribe();
      });

      await t.step("afterwards every service is up and a normal request is correct", async () => {
        const ready = await fetch(`${svc.baseUrl}/readyz`);
        assertEquals(ready.status, 200, JSON.stringify(await ready.json()));
        assert((await completion(svc.baseUrl, true)).startsWith(STORIES260K_GREEDY));
      });
    } finally {
      await Promise.all([gateway, prefill, decode, operator].map((c) => c.close()));
      await svc.stop();
      await nats.stop();
    }
  },
});
