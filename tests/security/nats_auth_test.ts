/**
 * The broker is the first trust boundary: with the server config `npm start` runs (per-role
 * nkey users, shared/nats/permissions.ts), a client without credentials, or with a key the
 * server does not list, is refused, and each role can publish and subscribe only where its
 * role needs to. A refused publish is proven by order, not by waiting: the observer sees a
 * marker published after it, and never the refused message.
 */
import { assertEquals } from "@std/assert";
import { type NatsConnection, nkeys, type Subscription } from "@nats-io/nats-core";
import { probeConnect, startNatsServer } from "../_harness/nats_server.ts";
import { connectNats } from "../../shared/nats/connect.ts";
import type { Role } from "../../shared/nats/permissions.ts";

async function withServer(fn: (s: Awaited<ReturnType<typeof startNatsServer>>) => Promise<void>) {
  const s = await startNatsServer({ anonymous: "refused" });
  try {
    await fn(s);
  } finally {
    await s.stop();
  }
}

/** Messages the observer (the test operator) sees on `subjects`, in order. */
function observe(nc: NatsConnection, subjects: string[]): { seen: string[]; subs: Subscription[] } {
  const seen: string[] = [];
  const subs = subjects.map((s) =>
    nc.subscribe(s, {
      callback: (_e, m) => {
        seen.push(`${m.string()} → ${m.subject}`);
      },
    })
  );
  return { seen, subs };
}

async function until(cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("the marker never arrived");
    await new Promise((r) => setTimeout(r, 5));
  }
}

Deno.test("nats-server as npm start runs it refuses a client without credentials or with an unknown key", async () => {
  await withServer(async (s) => {
    const nkeyOf = (seed: Uint8Array) => (info: { nonce?: string }) => {
      const kp = nkeys.fromSeed(seed);
      const sig = kp.sign(new TextEncoder().encode(info.nonce));
      return {
        nkey: kp.getPublicKey(),
        sig: btoa(String.fromCharCode(...sig)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, ""),
      };
    };
    const decodeSeed = await Deno.readFile((s.authAs("decode") as { seedFile: string }).seedFile);
    // the probe itself works: a listed key gets in
    assertEquals(await probeConnect(s.port, nkeyOf(decodeSeed.subarray(0, 58))), "PONG");
    assertEquals(await probeConnect(s.port), "-ERR 'Authorization Violation'");
    assertEquals(
      await probeConnect(s.port, nkeyOf(nkeys.createUser().getSeed())),
      "-ERR 'Authorization Violation'",
    );
    assertEquals(
      await probeConnect(s.port, () => ({ user: "kvrelay-test", pass: "guess" })),
      "-ERR 'Authorization Violation'",
    );
  });
});

Deno.test("nats-server refuses each role's publishes outside its subjects, and delivers those inside", async () => {
  await withServer(async (s) => {
    const observer = await connectNats(s.url, "observer", s.operator);
    const clients = new Map<Role, NatsConnection>();
    for (const role of ["gateway", "prefill", "decode", "batch"] as const) {
      clients.set(role, await connectNats(s.url, `kvrelay-${role}`, s.authAs(role)));
    }
    const tokens = "kvrelay.tokens.0123456789abcdef0123456789abcdef";
    const ingest = "kvrelay.decode.X1.ingest";
    const cases: [Role, string, boolean][] = [
      ["decode", "kvrelay.prefill.run", false],
      ["decode", "kvrelay.decode.open", false],
      ["decode", ingest, false],
      ["prefill", tokens, false], // only decode speaks on a token subject
      ["gateway", tokens, false],
      ["batch", tokens, false],
      ["gateway", ingest, false], // only a prefill node sends bundles
      ["batch", ingest, false],
      ["prefill", "kvrelay.decode.open", false],
      ["prefill", "$JS.API.STREAM.LIST", false],
      ["decode", "$KV.kvrelay_files.x", false],
      ["decode", tokens, true],
      ["prefill", ingest, true],
      ["gateway", "kvrelay.prefill.run", true],
      ["gateway", "kvrelay.decode.open", true],
      ["gateway", "kvrelay.decode.X1.control", true],
      ["batch", "kvrelay.prefill.run", true],
    ];
    const marker = "kvrelay.tokens.ffffffffffffffffffffffffffffffff";
    const { seen, subs } = observe(observer, [...new Set(cases.map((c) => c[1])), marker]);
    await observer.flush();
    const decode = clients.get("decode")!;
    for (const [i, [role, subject]] of cases.entries()) {
      const nc = clients.get(role)!;
      nc.publish(subject, role);
      await nc.flush(); // the server has handled the publish above
      // so the observer gets the marker after that publish, if the publish was let through
      decode.publish(marker, `marker ${i}`);
      await until(() => seen.includes(`marker ${i} → ${marker}`));
    }
    for (const [role, subject, allowed] of cases) {
      assertEquals(seen.includes(`${role} → ${subject}`), allowed, `${role} publishes ${subject}`);
    }
    subs.forEach((x) => x.unsubscribe());
    await Promise.all([observer, ...clients.values()].map((c) => c.close()));
  });
});

Deno.test("nats-server refuses subscriptions outside a role's subjects (no one reads kvrelay.> or another's inbox)", async () => {
  await withServer(async (s) => {
    const cases: [Role, string, boolean][] = [
      ["gateway", "kvrelay.>", false],
      ["gateway", ">", false],
      ["gateway", "kvrelay.decode.open", false],
      ["gateway", "_INBOX.>", false],
      ["decode", "kvrelay.tokens.>", false],
      ["decode", "kvrelay.prefill.run", false],
      ["prefill", "_INBOX.kvrelay-gateway.>", false],
      ["prefill", "kvrelay.decode.X1.ingest", false],
      ["batch", "kvrelay.decode.open", false],
      ["gateway", "kvrelay.tokens.0123456789abcdef0123456789abcdef", true],
      ["gateway", "_INBOX.kvrelay-gateway.abc", true],
      ["decode", "kvrelay.decode.open", true],
      ["prefill", "kvrelay.prefill.run", true],
    ];
    for (const [role, subject, allowed] of cases) {
      const nc = await connectNats(s.url, `kvrelay-${role}`, s.authAs(role));
      const sub = nc.subscribe(subject);
      await nc.flush();
      // a refused subscription is closed by the server's error, which comes before the flush's PONG
      await nc.flush();
      assertEquals(!sub.isClosed(), allowed, `${role} subscribes ${subject}`);
      await nc.close();
    }
  });
});
