/**
 * The hand-off through the real services on kvrelay-tiny: pipelined (layer by layer, over a
 * modelled link) and not pipelined give the same tokens and the same bundles, and NATS carries
 * little beyond the compressed bytes — raw KV never crosses it.
 */
import { assert, assertEquals } from "@std/assert";
import { freePort, startNatsServer } from "../_harness/nats_server.ts";
import { loadConfig } from "../../shared/config/mod.ts";
import { loadConfiguredModel } from "../../shared/pipeline/load_model.ts";
import { runLocal } from "../../shared/pipeline/local_run.ts";
import { defaultKvSettings, resolveKvSettings } from "../../shared/pipeline/kv_settings.ts";
import { startServices } from "../_harness/services.ts";

const PROMPT = Array.from(
  { length: 24 },
  (_, i) =>
    `Note ${i}: the river ran past the old mill, where Mia counted ${i * 7 + 3} birds in a blue book.`,
).join("\n");

interface Completion {
  text: string;
  kv: {
    codec: string;
    raw_basis: string;
    raw_bytes: number;
    wire_bytes: number;
    ratio: number;
    ms: { handoff: number };
  };
  prompt_tokens: number;
}

async function complete(baseUrl: string, codec: string): Promise<Completion> {
  const r = await fetch(`${baseUrl}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: "kvrelay-tiny",
      prompt: PROMPT,
      max_tokens: 24,
      temperature: 0,
      kv_compression: codec === "fp16" ? { codec } : { codec, error_bound: 1e-2, error_mode: "rel" },
    }),
  });
  const json = await r.json();
  assertEquals(r.status, 200, JSON.stringify(json));
  return { text: json.choices[0].text, kv: json.usage.kv, prompt_tokens: json.usage.prompt_tokens };
}

/** Bytes clients published into the NATS server so far (its monitoring endpoint). */
async function natsInBytes(monitor: number): Promise<number> {
  const varz = await (await fetch(`http://127.0.0.1:${monitor}/varz`)).json();
  return varz.in_bytes as number;
}

Deno.test({
  name: "hand-off e2e: pipelined over a modelled link equals not pipelined, and NATS carries ~the wire bytes",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const monitor = freePort();
    const nats = await startNatsServer({ extraConfig: `http: 127.0.0.1:${monitor}` });
    const runs: Record<string, Completion[]> = {};
    try {
      for (const pipeline of ["1", "0"]) {
        const svc = await startServices(nats.url, { KVRELAY_PIPELINE: pipeline, KVRELAY_LINK_GBPS: "2" });
        try {
          const out: Completion[] = [];
          for (const codec of ["fast", "kvsort", "fp16"]) {
            const before = await natsInBytes(monitor);
            const c = await complete(svc.baseUrl, codec);
            const carried = (await natsInBytes(monitor)) - before;
            out.push(c);
            assertEquals(c.kv.raw_basis, "fp16");
            // kvrelay-tiny: 8 layers x 2 KV heads x 64, K and V, 2 bytes a value
            assertEquals(c.kv.raw_bytes, c.prompt_tokens * 8 * 2 * 64 * 2 * 2);
            assert(c.kv.ms.handoff > 0);
            // raw fp32 KV would be 2x raw_bytes; what crosses NATS is the bundles plus a little
            if (codec !== "fp16") {
              assert(c.kv.ratio > 2, `${codec} ratio ${c.kv.ratio}`);
              assert(
                carried <= 1.3 * c.kv.wire_bytes,
                `${codec}: NATS carried ${carried} B for ${c.kv.wire_bytes} wire bytes`,
              );
            }
          }
          runs[pipeline] = out;
        } finally {
          await svc.stop();
        }
      }
      for (let i = 0; i < runs["1"].length; i++) {
        assertEquals(runs["1"][i].text, runs["0"][i].text, `codec ${runs["1"][i].kv.codec}: same tokens`);
        assertEquals(runs["1"][i].kv.wire_bytes, runs["0"][i].kv.wire_bytes);
      }
      assert(runs["1"][0].text.length > 0);
      // the HTTP text is `generate`'s for this Hugging Face tokenizer too (first token's space included)
      const config = loadConfig({});
      const model = await loadConfiguredModel(config);
      try {
        const local = await runLocal(model, model.tokenizer.encode(PROMPT), {
          kv: resolveKvSettings(defaultKvSettings(config.kv), {
            codec: "fast",
            error_bound: 1e-2,
            error_mode: "rel",
          }),
          sampling: { maxTokens: 24, temperature: 0, topP: 1 },
        });
        assertEquals(runs["1"][0].text, local.text);
      } finally {
        await model.close();
      }
    } finally {
      await nats.stop();
    }
  },
});
