/**
 * Chat turns to prompt token ids. A model with a chat template (a Hugging Face folder whose
 * `tokenizer_config.json` has `chat_template`) gets its own template, rendered with
 * `add_generation_prompt`; the text is then tokenized without adding special tokens, as
 * transformers' `apply_chat_template` does, so a template that writes `bos_token` yields
 * exactly one BOS. Models without a template (llama2.c checkpoints) get one `role: content`
 * line per turn (an assistant's tool calls as `name(arguments)` after its content), then
 * `assistant:`, with the tokenizer's BOS. Tool calls given to a template that never reads
 * `tool_calls` are a 400 naming them, not dropped.
 * @module
 */
import { badRequest } from "../errors.ts";
import type { Tokenizer } from "../tokenizer/mod.ts";
import { ChatTemplate, type ChatTurn } from "../tokenizer/mod.ts";

/**
 * The plain prompt text for models without a chat template.
 *
 * @example
 * ```ts
 * import { renderChat } from "./chat.ts";
 * renderChat([{ role: "user", content: "Hi" }]); // "user: Hi\nassistant:"
 * ```
 */
export function renderChat(messages: ChatTurn[]): string {
  const line = (m: ChatTurn) => {
    const calls = (m.tool_calls ?? []).map((c) => `${c.function.name}(${c.function.arguments})`);
    return `${m.role}: ${[m.content, ...calls].filter(Boolean).join(" ")}`;
  };
  return messages.map(line).join("\n") + "\nassistant:";
}

/**
 * The chat template of the checkpoint a configuration names: the folder of a `tokenizer.json`
 * tokenizer, else the model folder. Undefined for a llama2.c checkpoint or a folder without
 * a template.
 */
export async function loadChatTemplate(
  paths: { modelPath?: string; tokenizerPath?: string },
): Promise<ChatTemplate | undefined> {
  if (paths.tokenizerPath?.endsWith(".json")) {
    return await ChatTemplate.load(paths.tokenizerPath.replace(/[^/]*$/, "") || ".");
  }
  if (paths.tokenizerPath || !paths.modelPath) return undefined;
  const info = await Deno.stat(paths.modelPath).catch(() => undefined);
  return info?.isDirectory ? await ChatTemplate.load(paths.modelPath) : undefined;
}

/**
 * Token ids of a chat prompt. With a template, a leading `bos_token` in the rendered text
 * becomes the tokenizer's BOS id (once) and nothing else is added.
 *
 * @example
 * ```ts ignore
 * const ids = chatPromptIds(model.tokenizer, await loadChatTemplate(config), [
 *   { role: "user", content: "How many apples?" },
 * ]);
 * ```
 */
export function chatPromptIds(
  tokenizer: Tokenizer,
  template: ChatTemplate | undefined,
  messages: ChatTurn[],
): number[] {
  if (!template) return tokenizer.encode(renderChat(messages));
  // A template that never reads `tool_calls` would drop them without a word.
  const calls = messages.findIndex((m) => m.tool_calls?.length);
  if (calls >= 0 && !template.source.includes("tool_calls")) {
    throw badRequest(
      `messages[${calls}].tool_calls: this model's chat template does not render tool calls`,
      `messages[${calls}].tool_calls`,
    );
  }
  const text = template.render(messages, { addGenerationPrompt: true });
  const bos = template.bosToken;
  if (bos && tokenizer.bosId >= 0 && text.startsWith(bos)) {
    return [tokenizer.bosId, ...tokenizer.encode(text.slice(bos.length), { bos: false })];
  }
  return tokenizer.encode(text, { bos: false });
}
