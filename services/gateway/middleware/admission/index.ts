/**
 * Admission control: at most `maxInflight` completions run at once; past it a request gets a
 * 429 (`overloaded`, OpenAI's error shape) with `Retry-After` before anything reads its body,
 * so a burst is shed at the door instead of queueing without bound. A streamed response holds
 * its place until its stream ends or its client goes away; any other response gives it back
 * as soon as it is made.
 *
 * @example
 * ```ts
 * // const admit = admission({ maxInflight: 16 });
 * // app.post("/v1/completions", admit, handler);
 * // admit.inflight(); // completions running now
 * ```
 * @module
 */
import type { Context, Next } from "hono";
import { KvrelayError } from "../../../../shared/errors.ts";

export interface AdmissionOptions {
  /** Completions at once; 0 = no limit. */
  maxInflight: number;
  /** What `Retry-After` says, in seconds (default 1). */
  retryAfterS?: number;
}

/** The middleware, with the count of requests it holds now. */
export interface Admission {
  (c: Context, next: Next): Promise<void>;
  inflight(): number;
}

export function admission(opts: AdmissionOptions): Admission {
  const retryAfterS = opts.retryAfterS ?? 1;
  let inflight = 0;
  const admit = async function admission(c: Context, next: Next): Promise<void> {
    if (opts.maxInflight > 0 && inflight >= opts.maxInflight) {
      throw new KvrelayError(
        "overloaded",
        `the server runs its limit of ${opts.maxInflight} requests; retry after ${retryAfterS} s`,
        { retryAfterS },
      );
    }
    inflight++;
    let held = true;
    const release = () => {
      if (held) inflight--;
      held = false;
    };
    try {
      await next();
    } finally {
      const body = c.res?.body;
      const streamed = c.res?.headers.get("content-type")?.startsWith("text/event-stream");
      if (body && streamed) c.res = new Response(releasing(body, release), c.res);
      else release();
    }
  };
  return Object.assign(admit, { inflight: () => inflight });
}

/** `body` as it is, calling `release` once when it ends, fails or is cancelled. */
function releasing(body: ReadableStream<Uint8Array>, release: () => void): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const r = await reader.read();
        if (r.done) {
          release();
          controller.close();
        } else controller.enqueue(r.value);
      } catch (err) {
        release();
        controller.error(err);
      }
    },
    cancel(reason) {
      release();
      return reader.cancel(reason);
    },
  });
}
