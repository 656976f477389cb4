/**
 * The executable contract (shared/handoff/contract.ts): every call's request and reply check
 * accepts what the services send and refuses hostile bodies with a 400 naming the field.
 */
import { assertEquals, assertThrows } from "@std/assert";
import { KvrelayError } from "../../shared/errors.ts";
import {
  CALLS,
  type DecodeOpenRequest,
  EVENTS,
  type PrefillRunRequest,
} from "../../shared/handoff/contract.ts";
import { parseBody } from "../../shared/nats/call.ts";
import { toJsonBytes } from "../../shared/nats/codec.ts";
import { newStreamKey } from "../../shared/nats/event_mac.ts";
import { defaultKvSettings } from "../../shared/pipeline/kv_settings.ts";
import { DEFAULTS } from "../../shared/config/mod.ts";

const sampling = { maxTokens: 16, temperature: 0, topP: 1 };
const open: DecodeOpenRequest = {
  requestId: "cmpl-1",
  sampling,
  tokenSubject: "kvrelay.tokens.0123456789abcdef0123456789abcdef",
  tokenKey: newStreamKey(),
};
const run: PrefillRunRequest = {
  requestId: "cmpl-1",
  prompt: "Once",
  sampling,
  kv: defaultKvSettings(DEFAULTS.kv),
  decodeIngest: "kvrelay.decode.abc123.ingest",
};

function refused(check: (v: unknown, p: string) => unknown, body: unknown, param?: string) {
  const e = assertThrows(() => parseBody(check, toJsonBytes(body), "body"), KvrelayError);
  assertEquals(e.code, "bad_request", `${JSON.stringify(body)?.slice(0, 80)}: ${e.message}`);
  if (param) assertEquals(e.param, param, e.message);
}

const junk = [null, {}, [], "open", 42, true];

Deno.test("CALLS.decodeOpen.request refuses junk, empty or foreign token subjects and short keys", () => {
  assertEquals(parseBody(CALLS.decodeOpen.request, toJsonBytes({ ...open, extra: 1 }), "body"), open);
  for (const j of junk) refused(CALLS.decodeOpen.request, j);
  for (const tokenSubject of ["", ">", "kvrelay.tokens.*", "kvrelay.tokens.abc", "kvrelay.prefill.run", 7]) {
    refused(CALLS.decodeOpen.request, { ...open, tokenSubject }, "body.tokenSubject");
  }
  refused(CALLS.decodeOpen.request, { ...open, tokenKey: "short" }, "body.tokenKey");
  refused(CALLS.decodeOpen.request, { ...open, requestId: "a b" }, "body.requestId");
  refused(
    CALLS.decodeOpen.request,
    { ...open, sampling: { ...sampling, maxTokens: 0 } },
    "body.sampling.maxTokens",
  );
  refused(CALLS.decodeOpen.request, { ...open, sampling: { ...sampling, topP: "1" } }, "body.sampling.topP");
  refused(CALLS.decodeOpen.request, { ...open, sampling: null }, "body.sampling");
  const e = assertThrows(() => parseBody(CALLS.decodeOpen.request, new Uint8Array([0xff, 0x00, 0x7b]), "x"));
  assertEquals((e as KvrelayError).code, "bad_request");
});

Deno.test("CALLS.prefillRun.request refuses a bogus codec, a missing prompt and a foreign ingest subject", () => {
  assertEquals(parseBody(CALLS.prefillRun.request, toJsonBytes(run), "body"), run);
  for (const j of junk) refused(CALLS.prefillRun.request, j);
  refused(CALLS.prefillRun.request, { ...run, kv: { ...run.kv, codec: "bogus" } }, "body.kv.codec");
  refused(CALLS.prefillRun.request, { ...run, kv: { ...run.kv, evictionRate: 0.5 } }, "body.kv.evictionRate");
  refused(CALLS.prefillRun.request, { ...run, prompt: undefined }, "body.prompt");
  refused(CALLS.prefillRun.request, { ...run, promptIds: [1, -1] }, "body.promptIds[1]");
  refused(CALLS.prefillRun.request, { ...run, decodeIngest: "kvrelay.tokens.x" }, "body.decodeIngest");
  refused(CALLS.prefillRun.request, { ...run, decodeIngest: "kvrelay.decode.*.ingest" }, "body.decodeIngest");
});

Deno.test("CALLS.decodeCommit, decodeControl and EVENTS.token refuse wrong types", () => {
  for (const j of junk) {
    refused(CALLS.decodeCommit.request, j);
    refused(CALLS.decodeControl.request, j);
    refused(EVENTS.token.check, j);
  }
  refused(CALLS.decodeCommit.request, { requestId: "r", firstToken: -1, nPos: 3 }, "body.firstToken");
  refused(CALLS.decodeControl.request, { op: "drop", requestId: "r" }, "body.op");
  refused(EVENTS.token.check, { type: "token", seq: 0, id: 1 }, "body.text");
  refused(EVENTS.token.check, { type: "tokens", seq: 0, id: 1, text: "" }, "body.type");
  assertEquals(
    parseBody(
      EVENTS.token.check,
      toJsonBytes({ type: "done", seq: 3, finishReason: "stop", completionTokens: 3, generateMs: 1 }),
      "e",
    ),
    { type: "done", seq: 3, finishReason: "stop", completionTokens: 3, generateMs: 1 },
  );
});

Deno.test("CALLS replies: a decode.open reply must name decode's own subjects", () => {
  const reply = { ingest: "kvrelay.decode.A1.ingest", control: "kvrelay.decode.A1.control", instance: "A1" };
  assertEquals(parseBody(CALLS.decodeOpen.reply, toJsonBytes(reply), "r"), reply);
  refused(CALLS.decodeOpen.reply, { ...reply, control: "kvrelay.prefill.run" }, "body.control");
  refused(CALLS.decodeOpen.reply, { ...reply, ingest: "kvrelay.decode.>" }, "body.ingest");
});
