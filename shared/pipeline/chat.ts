/**
 * Chat turns to prompt text for models without a chat template of their own (llama2.c
 * checkpoints): one `role: content` line per turn, then `assistant:` to answer.
 */
export function renderChat(messages: { role: string; content: string }[]): string {
  return messages.map((m) => `${m.role}: ${m.content}`).join("\n") + "\nassistant:";
}
