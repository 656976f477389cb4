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
  unavailable: 503,
  timeout: 504,
  corrupt_bundle: 502,
  model_error: 500,
  internal: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/** One error type for every expected failure. `param` names the offending request field. */
export class KvrelayError extends Error {
  readonly code: ErrorCode;
  readonly param?: string;
  constructor(code: ErrorCode, message: string, options?: { param?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "KvrelayError";
    this.code = code;
    this.param = options?.param;
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

/** Wire form of an error, carried in NATS service error headers. */
export function errorToWire(err: unknown): { code: ErrorCode; message: string } {
  if (err instanceof KvrelayError) return { code: err.code, message: err.message };
  return { code: "internal", message: err instanceof Error ? err.message : String(err) };
}

/** Rebuilds a typed error from a code and message received over NATS. */
export function errorFromWire(code: string, message: string): KvrelayError {
  return new KvrelayError(isErrorCode(code) ? code : "internal", message);
}
