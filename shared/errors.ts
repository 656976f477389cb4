/**
 * The closed error vocabulary of kvrelay. Every error that crosses a service boundary is a
 * `KvrelayError` with one of these codes; the gateway maps the code to an HTTP status and
 * OpenAI's error shape, NATS services send it in the `Nats-Service-Error(-Code)` headers
 * and the caller rebuilds the same error with `errorFromWire`.
 * @module
 */

/** Codes, each with its HTTP status. */
export const ERROR_STATUS = {
  bad_request: 400,
  unauthorized: 401,
  not_found: 404,
  payload_too_large: 413,
  /** Too much work in flight here; try again after `retryAfterS`. */
  overloaded: 429,
  unavailable: 503,
  timeout: 504,
  corrupt_bundle: 502,
  model_error: 500,
  internal: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/**
 * One error type for every expected failure. `param` names the offending request field;
 * `retryAfterS`, on an `overloaded` or `unavailable` error, says when trying again may work
 * (the gateway's `Retry-After`).
 */
export class KvrelayError extends Error {
  readonly code: ErrorCode;
  readonly param?: string;
  readonly retryAfterS?: number;
  constructor(
    code: ErrorCode,
    message: string,
    options?: { param?: string; cause?: unknown; retryAfterS?: number },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "KvrelayError";
    this.code = code;
    this.param = options?.param;
    this.retryAfterS = options?.retryAfterS;
  }
  get status(): number {
    return ERROR_STATUS[this.code];
  }
}

/** Shorthand for a 400 with the field that caused it. */
export function badRequest(message: string, param?: string): KvrelayError {
  return new KvrelayError("bad_request", message, { param });
}

export function isErrorCode(s: string): s is ErrorCode {
  return Object.hasOwn(ERROR_STATUS, s);
}

/**
 * Any thrown value as a `KvrelayError`: a `SyntaxError` (a corrupt bundle or codec stream,
 * by the house rule that format errors subclass it) is `corrupt_bundle`; the rest `internal`.
 */
export function asKvrelayError(err: unknown): KvrelayError {
  if (err instanceof KvrelayError) return err;
  if (err instanceof SyntaxError) return new KvrelayError("corrupt_bundle", err.message, { cause: err });
  return new KvrelayError("internal", err instanceof Error ? err.message : String(err), { cause: err });
}

/** Wire form of an error, carried in NATS service error headers. */
export function errorToWire(err: unknown): { code: ErrorCode; message: string; param?: string } {
  const e = asKvrelayError(err);
  return e.param === undefined
    ? { code: e.code, message: e.message }
    : { code: e.code, message: e.message, param: e.param };
}

/** Rebuilds a typed error from a code and message received over NATS. */
export function errorFromWire(code: string, message: string, param?: string): KvrelayError {
  return new KvrelayError(isErrorCode(code) ? code : "internal", message, {
    param: typeof param === "string" ? param.slice(0, 200) : undefined,
  });
}
