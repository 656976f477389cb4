/**
 * The block store's one error that callers catch: the budget cannot hold a request.
 * @module
 */
import { KvrelayError } from "../errors.ts";

/**
 * Thrown when an allocation needs more blocks than are free. A `KvrelayError` with code
 * `unavailable` (HTTP 503): the caller may retry when sequences finish. Nothing was
 * allocated by the failing call.
 */
export class OutOfBlocksError extends KvrelayError {
  /** Blocks the failing call needed. */
  readonly needed: number;
  /** Blocks free when it failed. */
  readonly free: number;
  constructor(needed: number, free: number) {
    super("unavailable", `KV block store full: need ${needed} blocks, ${free} free`);
    this.name = "OutOfBlocksError";
    this.needed = needed;
    this.free = free;
  }
}
