/**
 * The services over a 3-node NATS cluster (infra/nats/cluster.conf): the gateway on node 1, one
 * prefill node and one decode instance on each of nodes 2 and 3. Node 2 is killed (`kill -9`)
 * under steady traffic: no request is wrong or hung (each ends correct or with a typed error),
 * its services reconnect to the nodes left, and requests go on: all correct from 4 s after the kill.
 *
 * Core NATS delivers at most once: a message that was inside the killed node is gone. A lost token
 * event is a gap the gateway reports (`corrupt_bundle`, never a wrong text); a lost `prefill.run`
 * has no one to report it (decode still holds the request and beats), so that request ends at its
 * deadline, 8 s here, with a 504.
 */
import { assert, assertEquals } from "@std/assert";
import { startNatsCluster } from "../_harness/nats_cluster.ts";
import { startFleet, waitInstances } from "../_harness/fleet.ts";
import { STORIES260K } from "../_harness/paths.ts";
import { connectNats } from "../../shared/nats/connect.ts";
import { complete, Ledger, type Outcome } from "./_ledger.ts";

const ENV = {
  KVRELAY_MODEL: STORIES260K.model,
  KVRELAY_TOKENIZER: STORIES260K.tokenizer,
  KVRELAY_REQUEST_TIMEOUT_MS: "8000",
};
const LIMIT_MS = 30_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test({
  name: "3-node NATS cluster: kill -9 of a node mid-traffic loses nothing, and requests go on",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const cluster = await startNatsCluster(3);
    const [one, two, three] = cluster.urls;
    const fleet = await startFleet(
      { url: one, serviceEnv: cluster.serviceEnv },
      ENV,
      { prefill: 2, decode: 2 },
      (service, n) => ({ NATS_URL: service === "gateway" ? one : n === 1 ? two : three }),
    );
    const nc = await connectNats(one, "kvrelay-test", cluster.operator);
    try {
      await waitInstances(nc, "prefill", 2);
      await waitInstances(nc, "decode", 2);
      const body = { model: "stories260K", prompt: "", max_tokens: 48, temperature: 0 };
      const ref = await complete(fleet.baseUrl, body, { limitMs: LIMIT_MS });
      assertEquals(ref.status, 200);

      const ledger = new Ledger();
      const outs: Outcome[] = [];
      let stop = false;
      const client = async () => {
        while (!stop) {
          const o = await complete(fleet.baseUrl, body, { limitMs: LIMIT_MS });
          ledger.record(o, ref.text);
          outs.push(o);
        }
      };
      const clients = [client(), client(), client(), client()];
      await sleep(1500);
      const killedAt = performance.now();
      await cluster.kill(1);
      await sleep(6000);
      stop = true;
      await Promise.all(clients);

      ledger.assertBalanced();
      const startedAt = (o: Outcome) => o.endedAt - o.ms;
      const before = outs.filter((o) => o.endedAt < killedAt);
      const late = outs.filter((o) => startedAt(o) > killedAt + 4000);
      assert(before.length > 0 && late.length > 0, `before ${before.length}, late ${late.length}`);
      for (const o of late) {
        assertEquals(o.text, ref.text, `a request 4 s after the kill: ${JSON.stringify(o.error)}`);
      }
      // the prefill and decode instances of node 2 reconnected to the nodes left
      await waitInstances(nc, "prefill", 2, 10_000);
      await waitInstances(nc, "decode", 2, 10_000);
      console.log(
        "cluster ledger:",
        JSON.stringify({ ...ledger.toJSON(), before_kill: before.length, late: late.length }),
      );
    } finally {
      await nc.close();
      await fleet.stop();
      await cluster.stop();
    }
  },
});
