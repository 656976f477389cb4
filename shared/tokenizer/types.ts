/**
 * The tokenizer interface the model runtime and the services share.
 * @module
 */

/** Text ↔ token ids. */
export interface Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  /** Token ids of `text`; prepends BOS unless `bos: false`. */
  encode(text: string, opts?: { bos?: boolean }): number[];
  /**
   * Text of generated ids (without the prompt). `prevId` is the token before `ids[0]`
   * (default BOS, so a leading space after BOS is stripped as llama2.c does); pass the last
   * prompt id to keep a continuation's leading space.
   */
  decode(ids: number[], opts?: { prevId?: number }): string;
  /** Text of one token given the one before it, for streaming. */
  decodePiece(prevId: number, id: number): string;
}
