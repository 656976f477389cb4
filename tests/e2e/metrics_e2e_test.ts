/**
 * GET /metrics through the real services: the gateway merges its own metrics with the prefill
 * node's hand-off histograms and the decode instances' gauges, gathered over NATS under the
 * roles' real permissions. Scraped before and after real completions, every histogram moves.
 */
import { assert, assertEquals, assertGreater } from "@std/assert";
import { startNatsServer } from "../_harness/nats_server.ts";
import { startServices } from "../_harness/services.ts";
import { waitFor } from "../_harness/launcher.ts";
import { STORIES260K } from "../_harness/paths.ts";
import { parseExposition, sumOf } from "../../services/gateway/dashboard/view.js";

const ENV = { KVRELAY_MODEL: STORIES260K.model, KVRELAY_TOKENIZER: STORIES260K.tokenizer };
const HISTOGRAMS = [
  "kvrelay_kv_ratio",
  "kvrelay_handoff_ms",
  "kvrelay_encode_ms",
  "kvrelay_kept_fraction",
  "kvrelay_ttft_ms",
  "kvrelay_tpot_ms",
];

Deno.test({
  name: "e2e: GET /metrics merges every service's metrics, and real completions move every histogram",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const nats = await startNatsServer();
    const svc = await startServices(nats.url, ENV);
    try {
      const scrape = async () => {
        const r = await fetch(`${svc.baseUrl}/metrics`);
        assertEquals(r.status, 200);
        return parseExposition(await r.text());
      };
      const reporters = (s: ReturnType<typeof parseExposition>, service: string) =>
        sumOf(s, "kvrelay_metrics_reporters", (l) => l.service === service);
      // Both services answer $SRV.STATS once they are up (the gateway's ready only pings them).
      const before = await waitFor("prefill and decode report", 30_000, async () => {
        const s = await scrape();
        return reporters(s, "prefill") === 1 && reporters(s, "decode") === 1 ? s : undefined;
      });
      for (const h of HISTOGRAMS) assertEquals(sumOf(before, `${h}_count`), 0, h);
      assertEquals(sumOf(before, "kvrelay_blockstore_used_blocks"), 0);
      assertGreater(sumOf(before, "kvrelay_blockstore_capacity_blocks"), 0);

      const n = 2;
      let promptTokens = 0;
      let completionTokens = 0;
      let raw = 0;
      let wire = 0;
      for (let i = 0; i < n; i++) {
        const r = await fetch(`${svc.baseUrl}/v1/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({
            model: "stories260K",
            prompt: "Once upon a time, there was a little girl",
            max_tokens: 8,
            temperature: 0,
          }),
        });
        assertEquals(r.status, 200);
        const { usage } = await r.json();
        promptTokens += usage.prompt_tokens;
        completionTokens += usage.completion_tokens;
        raw += usage.kv.raw_bytes;
        wire += usage.kv.wire_bytes;
      }

      const after = await scrape();
      for (const h of HISTOGRAMS) {
        assertEquals(sumOf(after, `${h}_count`), n, `${h} counted each completion`);
        assertGreater(sumOf(after, `${h}_sum`), sumOf(before, `${h}_sum`), `${h} sum moved`);
      }
      assertEquals(
        sumOf(after, "kvrelay_requests_total", (l) => l.endpoint === "/v1/completions" && l.status === "200"),
        n,
      );
      assertEquals(sumOf(after, "kvrelay_input_tokens_total"), promptTokens);
      assertEquals(sumOf(after, "kvrelay_output_tokens_total"), completionTokens);
      assertEquals(
        sumOf(after, "kvrelay_kv_raw_bytes_total"),
        raw,
        "raw bytes = the sum of usage.kv.raw_bytes",
      );
      assertEquals(
        sumOf(after, "kvrelay_kv_wire_bytes_total"),
        wire,
        "wire bytes = the sum of usage.kv.wire_bytes",
      );
      assert(raw > 0 && wire > 0);
      // The decode gauges carry the instance; both sequences finished, so nothing runs or waits.
      const gauges = after.filter((m) => m.name === "kvrelay_running_sequences");
      assertEquals(gauges.length, 1);
      assertEquals(gauges[0].labels.decode_instance.length > 0, true);
      assertEquals(sumOf(after, "kvrelay_running_sequences") + sumOf(after, "kvrelay_waiting_sequences"), 0);
      assertEquals(sumOf(after, "kvrelay_metrics_report_errors_total"), 0);
    } finally {
      await svc.stop();
      await nats.stop();
    }
  },
});
