/**
 * The llama2.c `tokenizer.bin` tokenizer (a SentencePiece BPE export): int32
 * max_token_length, then per token a float32 score, an int32 byte length and the bytes.
 * Encoding follows llama2.c's `encode()`: BOS, a dummy-prefix space, one token per UTF-8
 * code point (or byte+3 for unknown bytes), then repeatedly merge the adjacent pair whose
 * concatenation is the best-scoring token. It knows nothing about models.
 * @module
 */
import { KvrelayError } from "../errors.ts";
import type { Tokenizer } from "./types.ts";

/** A tokenizer file that cannot be parsed; `offset` is where parsing failed. */
export class TokenizerFormatError extends SyntaxError {
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(`${message} (at byte ${offset})`);
    this.name = "TokenizerFormatError";
    this.offset = offset;
  }
}

// Pieces are kept as "binary strings" (one char per byte) so lookups are byte-exact.
function bin(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}

const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;
const utf8 = new TextEncoder();

/** llama2.c tokenizer over a parsed `tokenizer.bin`. */
export class Llama2cTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId = 1;
  readonly eosId = 2;
  readonly maxTokenLength: number;
  readonly #pieces: string[];
  readonly #scores: Float32Array;
  readonly #lookup = new Map<string, number>();

  private constructor(pieces: string[], scores: Float32Array, maxTokenLength: number) {
    this.vocabSize = pieces.length;
    this.#pieces = pieces;
    this.#scores = scores;
    this.maxTokenLength = maxTokenLength;
    for (let i = 0; i < pieces.length; i++) {
      if (!this.#lookup.has(pieces[i])) this.#lookup.set(pieces[i], i);
    }
  }

  /**
   * Parses `tokenizer.bin` bytes. With `vocabSize`, exactly that many tokens are read (as
   * llama2.c does); without, tokens are read to the end of the file.
   */
  static parse(bytes: Uint8Array, opts: { vocabSize?: number } = {}): Llama2cTokenizer {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (bytes.byteLength < 4) throw new TokenizerFormatError("tokenizer file shorter than its header", 0);
    const maxLen = view.getInt32(0, true);
    if (maxLen <= 0 || maxLen > 1 << 16) throw new TokenizerFormatError(`bad max_token_length ${maxLen}`, 0);
    const pieces: string[] = [];
    const scores: number[] = [];
    let off = 4;
    while (opts.vocabSize === undefined ? off < bytes.byteLength : pieces.length < opts.vocabSize) {
      if (off + 8 > bytes.byteLength) throw new TokenizerFormatError(`truncated token ${pieces.length}`, off);
      const score = view.getFloat32(off, true);
      const len = view.getInt32(off + 4, true);
      if (len < 0 || len > maxLen || off + 8 + len > bytes.byteLength) {
        throw new TokenizerFormatError(`bad length ${len} of token ${pieces.length}`, off + 4);
      }
      pieces.push(bin(bytes.subarray(off + 8, off + 8 + len)));
      scores.push(score);
      off += 8 + len;
    }
    if (pieces.length < 259) {
      throw new TokenizerFormatError(`${pieces.length} tokens: fewer than the 3 specials + 256 bytes`, off);
    }
    return new Llama2cTokenizer(pieces, Float32Array.from(scores), maxLen);
  }

  /** Reads and parses a `tokenizer.bin`; a missing file is a `bad_request`. */
  static async load(path: string, opts: { vocabSize?: number } = {}): Promise<Llama2cTokenizer> {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(path);
    } catch (err) {
      throw new KvrelayError("bad_request", `cannot read tokenizer ${path}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    return Llama2cTokenizer.parse(bytes, opts);
  }

  /** The raw piece of `id` (bytes as a binary string), e.g. `" Once"` or `"<0x0A>"`. */
  piece(id: number): string {
    this.#check(id);
    return this.#pieces[id];
  }

  #check(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new RangeError(`token id ${id} outside [0, ${this.vocabSize})`);
    }
  }

  encode(text: string, opts: { bos?: boolean } = {}): number[] {
    const tokens: number[] = [];
    if (opts.bos ?? true) tokens.push(this.bosId);
    if (text.length === 0) return tokens;
    const start = tokens.length; // BOS takes no part in merges
    const dummy = this.#lookup.get(" ");
    if (dummy !== undefined) tokens.push(dummy);
    // One token per UTF-8 code point, byte fallback (+3) when the code point is no token.
    const bytes = utf8.encode(text);
    let buf = "";
    for (let i = 0; i < bytes.length; i++) {
      if ((bytes[i] & 0xc0) !== 0x80) buf = "";
      buf += String.fromCharCode(bytes[i]);
      if (i + 1 < bytes.length && (bytes[i + 1] & 0xc0) === 0x80 && buf.length < 4) continue;
      const id = this.#lookup.get(buf);
      if (id !== undefined) tokens.push(id);
      else for (let j = 0; j < buf.length; j++) tokens.push(buf.charCodeAt(j) + 3);
      buf = "";
    }
    // Merge the best-scoring adjacent pair until none merges (first one wins ties).
    const seq = tokens.splice(start);
    for (;;) {
      let best = -Infinity;
      let bestId = -1;
      let bestIdx = -1;
      for (let i = 0; i + 1 < seq.length; i++) {
        const id = this.#lookup.get(this.#pieces[seq[i]] + this.#pieces[seq[i + 1]]);
        if (id !== undefined && this.#scores[id] > best) {
          best = this.#scores[id];
          bestId = id;
          bestIdx = i;
        }
      }
      if (bestIdx < 0) break;
      seq.splice(bestIdx, 2, bestId);
    }
    return tokens.concat(seq);
  }

  /**
   * Bytes of one token after `prevId`: `<0xNN>` is one byte; a leading space after BOS is
   * dropped; the control tokens (unk, BOS, EOS) have no text.
   */
  pieceBytes(prevId: number, id: number): Uint8Array {
    let p = this.piece(id);
    if (id <= this.eosId) return new Uint8Array(0);
    if (prevId === this.bosId && p.startsWith(" ")) p = p.slice(1);
    const m = BYTE_PIECE.exec(p);
    if (m) return Uint8Array.of(parseInt(m[1], 16));
    return Uint8Array.from(p, (c) => c.charCodeAt(0));
  }

  decodePiece(prevId: number, id: number): string {
    return new TextDecoder().decode(this.pieceBytes(prevId, id));
  }

  decode(ids: number[], opts: { prevId?: number } = {}): string {
    const parts: Uint8Array[] = [];
    let prev = opts.prevId ?? this.bosId;
    let n = 0;
    for (const id of ids) {
      const b = this.pieceBytes(prev, id);
      parts.push(b);
      n += b.length;
      prev = id;
    }
    const out = new Uint8Array(n);
    let off = 0;
    for (const b of parts) {
      out.set(b, off);
      off += b.length;
    }
    return new TextDecoder().decode(out);
  }
}
