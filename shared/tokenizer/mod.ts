/**
 * Tokenizers behind the `Tokenizer` interface: llama2.c `tokenizer.bin` (`Llama2cTokenizer`)
 * and Hugging Face `tokenizer.json` (`HfTokenizer`).
 *
 * @example
 * ```ts
 * import { Llama2cTokenizer } from "./mod.ts";
 * const tok = await Llama2cTokenizer.load("tok512.bin");
 * const ids = tok.encode("a cat"); // [1, 261, 280, 294]
 * tok.decode(ids.slice(1)); // "a cat"
 * ```
 * @module
 */
export type { Tokenizer } from "./types.ts";
export { Llama2cTokenizer, TokenizerFormatError } from "./llama2c_tokenizer.ts";
export { HfTokenizer } from "./hf_tokenizer.ts";
export { ChatTemplate, type ChatTurn, type ToolCall } from "./chat_template.ts";
