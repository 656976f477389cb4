/**
 * /v1/chat/completions on the embedded model (kvrelay-tiny) renders the checkpoint's own chat
 * template in prefill, and a template's raise_exception reaches the client as a 400.
 */
import { assertEquals } from "@std/assert";
import { startNatsServer } from "../_harness/nats_server.ts";
import { startServices } from "../_harness/services.ts";
import { EMBEDDED_MODEL_DIR, loadConfig } from "../../shared/config/mod.ts";
import { Model } from "../../shared/model/mod.ts";
import { runLocal } from "../../shared/pipeline/local_run.ts";
import { defaultKvSettings } from "../../shared/pipeline/kv_settings.ts";

const QUESTION =
  "Tom has 12 apples. He buys 7 more apples. Then he gives 5 apples to Mia. How many apples does Tom have now?";
const SYSTEM_REFUSED = "System messages are not supported by this model";

/** kvrelay-tiny with its template behind a guard that refuses system messages. */
async function guardedCopy(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "kvrelay-tiny-chat-" });
  for (const f of Deno.readDirSync(EMBEDDED_MODEL_DIR)) {
    if (f.isFile && f.name !== "tokenizer_config.json") {
      await Deno.symlink(`${EMBEDDED_MODEL_DIR}/${f.name}`, `${dir}/${f.name}`);
    }
  }
  const config = JSON.parse(await Deno.readTextFile(`${EMBEDDED_MODEL_DIR}/tokenizer_config.json`));
  config.chat_template =
    `{% if messages[0]['role'] == 'system' %}{{ raise_exception('${SYSTEM_REFUSED}') }}{% endif %}` +
    config.chat_template;
  await Deno.writeTextFile(`${dir}/tokenizer_config.json`, JSON.stringify(config));
  return dir;
}

async function post(url: string, body: unknown) {
  const r = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: r.status, json: await r.json() };
}

Deno.test({
  name: "e2e: chat completion on kvrelay-tiny uses its chat template; raise_exception is a 400",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const dir = await guardedCopy();
    const nats = await startNatsServer();
    const env = { KVRELAY_MODEL: dir };
    const svc = await startServices(nats.url, env);
    try {
      const modelId = (await (await fetch(`${svc.baseUrl}/v1/models`)).json()).data[0].id as string;
      // The reference: the template's text, tokenized with one <bos>, through the same path.
      const model = await Model.load({ modelPath: dir });
      // The generation prompt opens the `Solution:` scratchpad the model was trained on.
      const ids = model.tokenizer.encode(`Question: ${QUESTION}\nSolution:`);
      const local = await runLocal(model, ids, {
        kv: defaultKvSettings(loadConfig(env).kv),
        sampling: { maxTokens: 40, temperature: 0, topP: 1 },
      });
      await model.close();

      await t.step(
        "the prompt is the template's Question/Solution text, and the sum comes out right",
        async () => {
          const { status, json } = await post(`${svc.baseUrl}/v1/chat/completions`, {
            model: modelId,
            messages: [{ role: "user", content: QUESTION }],
            max_tokens: 40,
            temperature: 0,
          });
          assertEquals(status, 200, JSON.stringify(json));
          assertEquals(json.usage.prompt_tokens, ids.length);
          assertEquals(json.choices[0].message.content, local.text);
          // 12 + 7 - 5, worked in the scratchpad, then the answer line.
          assertEquals(json.choices[0].message.content, " 12 + 7 = 19. 19 - 5 = 14.\nAnswer: 14");
          assertEquals(json.choices[0].finish_reason, "stop");
        },
      );

      await t.step("raise_exception in the template answers 400 with its message", async () => {
        const { status, json } = await post(`${svc.baseUrl}/v1/chat/completions`, {
          model: modelId,
          messages: [{ role: "system", content: "Be brief." }, { role: "user", content: QUESTION }],
          max_tokens: 4,
        });
        assertEquals(status, 400, JSON.stringify(json));
        assertEquals(json.error.code, "bad_request");
        assertEquals(json.error.message, SYSTEM_REFUSED);
      });
    } finally {
      await svc.stop();
      await nats.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
