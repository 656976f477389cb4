/**
 * The codec's error for hostile or damaged input. Every failure to decode a stream —
 * truncation, a bad length, an unknown stage id, a digest mismatch, a size over the
 * caller's limit — is a `CorruptStreamError` (or the `StreamLimitError` subclass), a
 * `SyntaxError` carrying the byte offset where reading failed.
 * @module
 */

/** A stream that cannot be decoded; `offset` is the byte where the decoder gave up. */
export class CorruptStreamError extends SyntaxError {
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(`corrupt stream: ${message} (at byte ${offset})`);
    this.name = "CorruptStreamError";
    this.offset = offset;
  }
}

/** A well-formed header that declares more than the caller's limits allow. */
export class StreamLimitError extends CorruptStreamError {
  constructor(message: string, offset: number) {
    super(message, offset);
    this.name = "StreamLimitError";
  }
}

/**
 * A well-formed stream made with cross-channel predictor coefficients this process does not
 * hold (another model, or a model folder without its `kv_predictor.bin`).
 */
export class UnknownCoefficientsError extends CorruptStreamError {
  constructor(message: string, offset: number) {
    super(message, offset);
    this.name = "UnknownCoefficientsError";
  }
}
