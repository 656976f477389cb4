/**
 * The accuracy canary through the real services: with KVRELAY_CANARY_RATE=1 every completion
 * is shadowed; its answer is the one `generate` gives without a canary, and `usage.kv.canary`
 * is what the same shadow gives in one process. Decode-time eviction reports its peaks.
 */
import { assert, assertAlmostEquals, assertEquals } from "@std/assert";
import { startNatsServer } from "../_harness/nats_server.ts";
import { startServices } from "../_harness/services.ts";
import { REPO_DIR } from "../_harness/paths.ts";
import { EMBEDDED_MODEL_DIR, loadConfig } from "../../shared/config/mod.ts";
import { Model } from "../../shared/model/mod.ts";
import { runLocal } from "../../shared/pipeline/local_run.ts";
import { defaultKvSettings, resolveKvSettings } from "../../shared/pipeline/kv_settings.ts";

const ENV = { KVRELAY_MODEL: EMBEDDED_MODEL_DIR, KVRELAY_CANARY_RATE: "1" };
const KV = { eviction_rate: 4, protected_window: 8, observation_window: 8, sink: 0 };

/** A passkey prompt cut before its question: the model goes on with the filler, past many steps. */
async function passkeyPrompt(): Promise<string> {
  const py = `import sys, random; sys.path.insert(0, "${REPO_DIR}/infra/train"); import data
p, c, m = data.passkey_item(random.Random(11), [], 2400, True, 0.4); print(p.split("\\nQuestion:")[0])`;
  const out = await new Deno.Command("python3", { args: ["-c", py], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout).trimEnd();
}

Deno.test({
  name: "e2e: a canaried completion keeps its answer and reports usage.kv.canary and the decode peaks",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const prompt = await passkeyPrompt();
    const nats = await startNatsServer();
    const svc = await startServices(nats.url, ENV);
    try {
      const modelId = (await (await fetch(`${svc.baseUrl}/v1/models`)).json()).data[0].id as string;
      const r = await fetch(`${svc.baseUrl}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: modelId, prompt, max_tokens: 48, temperature: 0, kv_compression: KV }),
      });
      const json = await r.json();
      assertEquals(r.status, 200, JSON.stringify(json));

      // The reference: the same path in one process, without and with the shadow.
      const model = await Model.load({ modelPath: EMBEDDED_MODEL_DIR });
      const kv = resolveKvSettings(defaultKvSettings(loadConfig(ENV).kv), KV);
      const ids = model.tokenizer.encode(prompt);
      const sampling = { maxTokens: 48, temperature: 0, topP: 1 };
      const plain = await runLocal(model, ids, { kv, sampling });
      const shadowed = await runLocal(model, ids, { kv, sampling, canary: true });
      await model.close();

      assertEquals(json.choices[0].text, plain.text, "the shadow does not change the answer");
      assertEquals(shadowed.text, plain.text);
      const got = json.usage.kv;
      const want = shadowed.kv.canary!;
      assert(got.canary, JSON.stringify(got));
      // one comparison a decode step: every token after the first, and a last step that chose EOS
      assertEquals(json.choices[0].finish_reason, "length");
      assertEquals(got.canary.tokens, json.usage.completion_tokens - 1);
      assertEquals(got.canary.tokens, want.tokens);
      assertEquals(got.canary.top1_agreement, want.top1_agreement);
      assertAlmostEquals(got.canary.mean_kl, want.mean_kl, 1e-4);
      assert(got.canary.top1_agreement >= 0 && got.canary.top1_agreement <= 1);
      assert(got.canary.mean_kl >= 0 && got.canary.ms > 0);
      assertEquals(got.peak_cache_tokens, shadowed.kv.peak_cache_tokens);
      assertEquals(got.decode_evictions, shadowed.kv.decode_evictions);
      assert(got.decode_evictions > 0, "the rate held while decoding");
    } finally {
      await svc.stop();
      await nats.stop();
    }
  },
});
