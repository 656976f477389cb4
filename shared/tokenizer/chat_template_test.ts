import { assertEquals, assertThrows } from "@std/assert";
import { EMBEDDED_MODEL_DIR } from "../config/mod.ts";
import { KvrelayError } from "../errors.ts";
import { ChatTemplate } from "./chat_template.ts";

/** Llama-2-chat's template as its tokenizer_config.json ships it. */
const LLAMA2_TEMPLATE =
  "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

/** Qwen2-Instruct's ChatML template. */
const CHATML_TEMPLATE =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

async function withConfig<T>(config: object, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "kvrelay-chat-" });
  try {
    await Deno.writeTextFile(`${dir}/tokenizer_config.json`, JSON.stringify(config));
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("ChatTemplate.load() renders kvrelay-tiny's template as the Question/Solution turns it was trained on", async () => {
  const t = (await ChatTemplate.load(EMBEDDED_MODEL_DIR))!;
  assertEquals([t.bosToken, t.eosToken], ["<bos>", "<eos>"]);
  const text = t.render([
    { role: "user", content: "What is 2 + 3?" },
    // An answer as the model gives it: the scratchpad, then the answer line.
    { role: "assistant", content: " 2 + 3 = 5.\nAnswer: 5" },
    { role: "user", content: "Tom has 12 apples. He gives 5 to Ann. How many apples does Tom have now?" },
  ]);
  assertEquals(
    text,
    "<bos>Question: What is 2 + 3?\nSolution: 2 + 3 = 5.\nAnswer: 5<eos>\n" +
      "Question: Tom has 12 apples. He gives 5 to Ann. How many apples does Tom have now?\nSolution:",
  );
  assertEquals(
    t.render([{ role: "user", content: "Hi" }], { addGenerationPrompt: false }),
    "<bos>Question: Hi\n",
  );
});

Deno.test("ChatTemplate.load() renders a Llama-2 template from tokenizer_config.json", async () => {
  await withConfig(
    {
      bos_token: { content: "<s>", __type: "AddedToken" },
      eos_token: "</s>",
      chat_template: LLAMA2_TEMPLATE,
    },
    async (dir) => {
      const t = (await ChatTemplate.load(dir))!;
      assertEquals(
        t.render([
          { role: "system", content: "Be brief." },
          { role: "user", content: "Hi" },
          { role: "assistant", content: "Hello" },
          { role: "user", content: " Bye " },
        ]),
        "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello </s><s>[INST] Bye [/INST]",
      );
    },
  );
});

Deno.test("ChatTemplate.render() turns raise_exception into a bad_request with the template's message", async () => {
  await withConfig({ bos_token: "<s>", eos_token: "</s>", chat_template: LLAMA2_TEMPLATE }, async (dir) => {
    const t = (await ChatTemplate.load(dir))!;
    const err = assertThrows(
      () => t.render([{ role: "user", content: "a" }, { role: "user", content: "b" }]),
      KvrelayError,
    );
    assertEquals(err.code, "bad_request");
    assertEquals(err.status, 400);
    assertEquals(err.param, "messages");
    assertEquals(err.message, "Conversation roles must alternate user/assistant/user/assistant/...");
  });
});

Deno.test("ChatTemplate.load() renders a ChatML (Qwen2) template with no bos_token", async () => {
  await withConfig(
    { bos_token: null, eos_token: "<|im_end|>", pad_token: "<|endoftext|>", chat_template: CHATML_TEMPLATE },
    async (dir) => {
      const t = (await ChatTemplate.load(dir))!;
      assertEquals(t.bosToken, "");
      assertEquals(
        t.render([{ role: "user", content: "Hi" }]),
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n" +
          "<|im_start|>assistant\n",
      );
      assertEquals(
        t.render([{ role: "system", content: "S" }, { role: "user", content: "Hi" }], {
          addGenerationPrompt: false,
        }),
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n",
      );
    },
  );
});

Deno.test("ChatTemplate.fromTokenizerConfig() picks the default of a list of named templates", () => {
  const config = {
    chat_template: [
      { name: "tool_use", template: "tools" },
      { name: "default", template: "{{ messages[0].content }}!" },
    ],
  };
  assertEquals(ChatTemplate.fromTokenizerConfig(config)!.render([{ role: "user", content: "x" }]), "x!");
  assertEquals(ChatTemplate.fromTokenizerConfig(config, { name: "tool_use" })!.render([]), "tools");
  const err = assertThrows(
    () => ChatTemplate.fromTokenizerConfig({ chat_template: [{ name: "rag", template: "" }] }),
    KvrelayError,
  );
  assertEquals(err.message, 'chat_template has no template named "default" (it has: rag)');
});

Deno.test("ChatTemplate.load() reads chat_template.jinja and is undefined without a template", async () => {
  await withConfig({ bos_token: "<s>" }, async (dir) => {
    assertEquals(await ChatTemplate.load(dir), undefined);
    await Deno.writeTextFile(`${dir}/chat_template.jinja`, "{{ bos_token }}{{ messages | length }}");
    assertEquals((await ChatTemplate.load(dir))!.render([{ role: "user", content: "x" }]), "<s>1");
  });
  const empty = await Deno.makeTempDir();
  assertEquals(await ChatTemplate.load(empty), undefined);
  await Deno.remove(empty);
});

Deno.test("ChatTemplate() rejects a template that does not parse, and other render failures are bad_request", () => {
  assertEquals(assertThrows(() => new ChatTemplate("{% for %}"), KvrelayError).code, "bad_request");
  const t = new ChatTemplate("{{ messages[0].content.nope() }}");
  const err = assertThrows(() => t.render([{ role: "user", content: "x" }]), KvrelayError);
  assertEquals(err.code, "bad_request");
  assertEquals(err.param, "messages");
});
