/**
 * Hugging Face `tokenizer.json` behind the `Tokenizer` interface, through
 * `@huggingface/tokenizers` (pure JS). Streaming pieces are the difference between
 * decoding with and without the new token, so prefix-space rules and byte-level
 * merges come out as a one-shot decode would.
 * @module
 */
import { DigitsPreTokenizer, Tokenizer as HfTokenizerCore } from "@huggingface/tokenizers";
import { KvrelayError } from "../errors.ts";
import type { Tokenizer } from "./types.ts";

// The Rust `tokenizers` that trains our models splits digits with char::is_numeric (every Unicode
// number, \p{N}: "½", "²", "٣"); this JS port with \d (ASCII 0-9 only). So text the model saw as
// its own pieces was encoded differently here. Same split as the trainer, for every tokenizer.
DigitsPreTokenizer.prototype.pre_tokenize_text = function (this: DigitsPreTokenizer, text: string): string[] {
  const individual =
    (this as unknown as { config: { individual_digits?: boolean } }).config.individual_digits;
  return text.match(individual ? /[^\p{N}]+|\p{N}/gu : /[^\p{N}]+|\p{N}+/gu) ?? [];
};

/** `tokenizer.json` tokenizer. `bosId` is -1 when the tokenizer has no BOS token. */
export class HfTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly #core: HfTokenizerCore;

  constructor(
    tokenizerJson: object,
    opts: { config?: Record<string, unknown>; bosId?: number; eosId?: number } = {},
  ) {
    const config = opts.config ?? {};
    this.#core = new HfTokenizerCore(tokenizerJson, config);
    const id = (tok: unknown): number | undefined => {
      const s = typeof tok === "string" ? tok : (tok as { content?: string } | undefined)?.content;
      return s === undefined ? undefined : this.#core.token_to_id(s);
    };
    this.vocabSize = this.#core.get_vocab(true).size;
    this.bosId = opts.bosId ?? id(config.bos_token) ?? -1;
    this.eosId = opts.eosId ?? id(config.eos_token) ?? -1;
  }

  /** Reads `tokenizer.json` and, when present beside it, `tokenizer_config.json`. */
  static async load(path: string, opts: { bosId?: number; eosId?: number } = {}): Promise<HfTokenizer> {
    const read = async (p: string) => JSON.parse(await Deno.readTextFile(p));
    let json: object;
    try {
      json = await read(path);
    } catch (err) {
      throw new KvrelayError("bad_request", `cannot read tokenizer ${path}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    let config: Record<string, unknown> = {};
    try {
      config = await read(path.replace(/[^/]*$/, "tokenizer_config.json"));
    } catch {
      // optional
    }
    return new HfTokenizer(json, { config, ...opts });
  }

  encode(text: string, opts: { bos?: boolean } = {}): number[] {
    return this.#core.encode(text, { add_special_tokens: opts.bos ?? true }).ids;
  }

  decode(ids: number[], opts: { prevId?: number } = {}): string {
    const prev = opts.prevId ?? this.bosId;
    if (prev < 0) return this.#core.decode(ids, { skip_special_tokens: true });
    const head = this.#core.decode([prev], { skip_special_tokens: true });
    const all = this.#core.decode([prev, ...ids], { skip_special_tokens: true });
    return all.startsWith(head)
      ? all.slice(head.length)
      : this.#core.decode(ids, { skip_special_tokens: true });
  }

  decodePiece(prevId: number, id: number): string {
    return this.decode([id], { prevId });
  }
}
