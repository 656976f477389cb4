import { assertEquals, assertNotEquals, assertThrows } from "@std/assert";
import { KvrelayError } from "../errors.ts";
import { STORIES260K } from "../../tests/_harness/paths.ts";
import { EMBEDDED_MODEL_DIR } from "../config/mod.ts";
import { HfTokenizer, Llama2cTokenizer } from "../tokenizer/mod.ts";
import { ChatTemplate } from "../tokenizer/chat_template.ts";
import { chatPromptIds, loadChatTemplate, renderChat } from "./chat.ts";

const TURNS = [{ role: "user", content: "What is 2 + 3?" }];

Deno.test("chatPromptIds() gives kvrelay-tiny's template text with exactly one BOS", async () => {
  const tok = await HfTokenizer.load(`${EMBEDDED_MODEL_DIR}/tokenizer.json`);
  const template = await loadChatTemplate({ modelPath: EMBEDDED_MODEL_DIR });
  const ids = chatPromptIds(tok, template, TURNS);
  assertEquals(ids, tok.encode("Question: What is 2 + 3?\nSolution:"));
  assertEquals(ids[0], tok.bosId);
  assertNotEquals(ids[1], tok.bosId);
  // An assistant turn's <eos> is the EOS id, not its characters.
  const two = chatPromptIds(tok, template, [...TURNS, { role: "assistant", content: "5" }, ...TURNS]);
  assertEquals(two.filter((id) => id === tok.eosId).length, 1);
  assertEquals(two.filter((id) => id === tok.bosId).length, 1);
});

Deno.test("chatPromptIds() adds nothing a template does not write", async () => {
  const tok = await HfTokenizer.load(`${EMBEDDED_MODEL_DIR}/tokenizer.json`);
  const template = new ChatTemplate("{% for m in messages %}Question: {{ m.content }}\n{% endfor %}Answer:", {
    specialTokens: { bos_token: "<bos>" },
  });
  assertEquals(
    chatPromptIds(tok, template, TURNS),
    tok.encode("Question: What is 2 + 3?\nAnswer:", { bos: false }),
  );
});

Deno.test("chatPromptIds() falls back to role: content lines for a llama2.c checkpoint", async () => {
  assertEquals(await loadChatTemplate({ modelPath: STORIES260K.model }), undefined);
  assertEquals(
    await loadChatTemplate({ modelPath: STORIES260K.model, tokenizerPath: STORIES260K.tokenizer }),
    undefined,
  );
  const tok = await Llama2cTokenizer.load(STORIES260K.tokenizer);
  assertEquals(chatPromptIds(tok, undefined, TURNS), tok.encode("user: What is 2 + 3?\nassistant:"));
  assertEquals(renderChat(TURNS), "user: What is 2 + 3?\nassistant:");
});

Deno.test("loadChatTemplate() finds the template beside a tokenizer.json", async () => {
  const t = await loadChatTemplate({
    modelPath: "/nonexistent",
    tokenizerPath: `${EMBEDDED_MODEL_DIR}/tokenizer.json`,
  });
  assertEquals(t?.bosToken, "<bos>");
});

const CALL = {
  id: "c1",
  type: "function" as const,
  function: { name: "weather", arguments: '{"city":"Oslo"}' },
};

Deno.test("chatPromptIds() renders tool calls where it can and refuses them where a template would drop them", async () => {
  const tok = await HfTokenizer.load(`${EMBEDDED_MODEL_DIR}/tokenizer.json`);
  const turns = [
    { role: "user", content: "Weather in Oslo?" },
    { role: "assistant", content: "", tool_calls: [CALL] },
    { role: "tool", content: "sunny", tool_call_id: "c1" },
  ];
  assertEquals(
    renderChat(turns),
    'user: Weather in Oslo?\nassistant: weather({"city":"Oslo"})\ntool: sunny\nassistant:',
  );
  const tiny = (await loadChatTemplate({ modelPath: EMBEDDED_MODEL_DIR }))!;
  assertEquals(
    tiny.render(turns),
    '<bos>Question: Weather in Oslo?\nSolution: weather({"city":"Oslo"})<eos>\nsunny\nSolution:',
  );
  assertEquals(chatPromptIds(tok, tiny, turns).filter((id) => id === tok.eosId).length, 1);
  const blind = new ChatTemplate("{% for m in messages %}{{ m.content }}\n{% endfor %}", {});
  const err = assertThrows(() => chatPromptIds(tok, blind, turns), KvrelayError);
  assertEquals(err.param, "messages[1].tool_calls");
});
