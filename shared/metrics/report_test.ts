import { assertEquals, assertStringIncludes } from "@std/assert";
import { Registry } from "prom-client";
import { startNatsServer } from "../../tests/_harness/nats_server.ts";
import { connectNats } from "../nats/connect.ts";
import { startService } from "../nats/service.ts";
import type { KvUsage } from "../handoff/contract.ts";
import { parseExposition, sumOf } from "../../services/gateway/dashboard/view.js";
import { exposition, KvMetrics, metricsReport, registerDecodeGauges, ServiceReports } from "./mod.ts";

const usage = (ratio: number, raw: number) =>
  ({
    codec: "kvsort",
    ratio,
    kept_fraction: 0.5,
    raw_bytes: raw,
    wire_bytes: raw / ratio,
    ms: { handoff: 12, encode: 3 },
  }) as KvUsage;

Deno.test({
  name: "ServiceReports.collect() merges every instance's report; a bad one is skipped and counted",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const server = await startNatsServer({ jetstream: false });
    const nc = await connectNats(server.url, "report-test");
    const stops: (() => Promise<unknown>)[] = [];
    try {
      // two prefill instances with hand-offs of their own
      for (const [ratio, raw] of [[2, 1000], [4, 4000]]) {
        const registry = new Registry();
        new KvMetrics(registry).observe(usage(ratio, raw));
        const svc = await startService(nc, {
          name: "prefill",
          description: "test",
          endpoints: { run: { subject: "t.prefill.run", handler: () => Promise.resolve({}) } },
          statsData: () => metricsReport(registry),
        });
        stops.push(() => svc.stop());
      }
      // a decode instance whose gauges are read at each scrape
      const decodeRegistry = new Registry();
      let running = 3;
      registerDecodeGauges(decodeRegistry, "d1", () => ({
        running,
        waiting: 1,
        store: { usedBlocks: 5, freeBlocks: 11, bytesUsed: 50, bytesCapacity: 160, sequences: 3 },
      }));
      const decode = await startService(nc, {
        name: "decode",
        description: "test",
        endpoints: { open: { subject: "t.decode.open", handler: () => Promise.resolve({}) } },
        statsData: async () => ({ usedBlocks: 5, ...await metricsReport(decodeRegistry) }),
      });
      stops.push(() => decode.stop());
      // a service whose report breaks the contract
      const bad = await startService(nc, {
        name: "bad",
        description: "test",
        endpoints: { x: { subject: "t.bad.x", handler: () => Promise.resolve({}) } },
        statsData: () => ({ metrics: [{ name: "no spaces allowed", values: [] }] }),
      });
      stops.push(() => bad.stop());

      const local = new Registry();
      const reports = new ServiceReports(nc, ["prefill", "decode", "bad", "absent"], local);
      const s = parseExposition(await exposition(local, await reports.collect()));
      assertEquals(sumOf(s, "kvrelay_kv_ratio_count"), 2);
      assertEquals(sumOf(s, "kvrelay_kv_ratio_sum"), 6);
      assertEquals(sumOf(s, "kvrelay_kv_raw_bytes_total"), 5000);
      assertEquals(sumOf(s, "kvrelay_kv_wire_bytes_total"), 1500);
      assertEquals(sumOf(s, "kvrelay_running_sequences", (l) => l.decode_instance === "d1"), 3);
      assertEquals(sumOf(s, "kvrelay_blockstore_capacity_blocks"), 16);
      const reporters = (service: string) =>
        sumOf(s, "kvrelay_metrics_reporters", (l) => l.service === service);
      assertEquals([reporters("prefill"), reporters("decode"), reporters("bad"), reporters("absent")], [
        2,
        1,
        0,
        0,
      ]);
      assertEquals(sumOf(s, "kvrelay_metrics_report_errors_total", (l) => l.service === "bad"), 1);

      // gauges are read again at the next collection
      running = 1;
      const again = parseExposition(await exposition(local, await reports.collect()));
      assertEquals(sumOf(again, "kvrelay_running_sequences"), 1);
      assertStringIncludes(await exposition(local, []), "# TYPE kvrelay_metrics_reporters gauge");
    } finally {
      for (const stop of stops) await stop();
      await nc.close();
      await server.stop();
    }
  },
});

Deno.test({
  name: "ServiceReports.collect() keeps a silent instance's last report until keepMs passes",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const server = await startNatsServer({ jetstream: false });
    const nc = await connectNats(server.url, "report-test");
    try {
      const registry = new Registry();
      new KvMetrics(registry).observe(usage(2, 1000));
      const svc = await startService(nc, {
        name: "prefill",
        description: "test",
        endpoints: { run: { subject: "t.prefill.run", handler: () => Promise.resolve({}) } },
        statsData: () => metricsReport(registry),
      });
      const kept = new ServiceReports(nc, ["prefill"], new Registry(), { maxWaitMs: 200 });
      const dropped = new ServiceReports(nc, ["prefill"], new Registry(), { maxWaitMs: 200, keepMs: 0 });
      assertEquals((await kept.collect()).length, 1);
      assertEquals((await dropped.collect()).length, 1);
      await svc.stop();
      assertEquals((await kept.collect()).length, 1, "a silent instance's counters do not vanish");
      // keepMs 0: gone at the first collection that does not hear from it
      assertEquals((await dropped.collect()).length, 0);
    } finally {
      await nc.close();
      await server.stop();
    }
  },
});
