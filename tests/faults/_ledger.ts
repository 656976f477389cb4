/**
 * What every fault test counts: each request sent ends correct (the greedy reference text, or a
 * stream that ends cleanly with it) or with a typed error (an OpenAI-shaped error whose `code`
 * is one of shared/errors.ts with its own status, in the HTTP response or inside the stream,
 * after text that is a prefix of the reference); nothing wrong, nothing hung.
 * @module
 */
import { assertEquals } from "@std/assert";
import { ERROR_STATUS, isErrorCode } from "../../shared/errors.ts";

/** How one request ended, as a client saw it. */
export interface Outcome {
  status: number;
  /** Text received (whole body's text, or the streamed pieces). */
  text: string;
  /** The error body's `error`, from the response or the stream. */
  error?: { code: string; type: string; message: string };
  /** A stream: it ended with `data: [DONE]`. */
  done?: boolean;
  /** It did not end within the client's limit. */
  hung: boolean;
  /** ms from the start of the request to its end. */
  ms: number;
  /** performance.now() when it ended. */
  endedAt: number;
  /** `Retry-After` of an error response. */
  retryAfter?: string | null;
}

export type Verdict = "correct" | "typed" | "wrong" | "hung";

export class Ledger {
  readonly counts: Record<Verdict, number> = { correct: 0, typed: 0, wrong: 0, hung: 0 };
  readonly codes: Record<string, number> = {};
  readonly wrongs: string[] = [];
  sent = 0;

  /** Counts `o` against `reference`, the full greedy text of its prompt. */
  record(o: Outcome, reference: string): Verdict {
    this.sent++;
    const v = verdict(o, reference);
    this.counts[v]++;
    if (v === "typed") this.codes[o.error!.code] = (this.codes[o.error!.code] ?? 0) + 1;
    if (v === "wrong") this.wrongs.push(`${o.status} ${JSON.stringify(o.error ?? o.text.slice(0, 80))}`);
    return v;
  }

  /** sent = correct + typed; wrong = 0; hung = 0. */
  assertBalanced(): void {
    assertEquals(this.counts.wrong, 0, `wrong: ${this.wrongs.join("; ")}`);
    assertEquals(this.counts.hung, 0, "hung requests");
    assertEquals(this.sent, this.counts.correct + this.counts.typed);
  }

  toJSON() {
    return { sent: this.sent, ...this.counts, codes: this.codes };
  }
}

function verdict(o: Outcome, reference: string): Verdict {
  if (o.hung) return "hung";
  if (o.error) {
    const code = o.error.code;
    if (!isErrorCode(code)) return "wrong";
    // in a stream (200) the text so far must be the reference's start; else the status is the code's
    if (o.status === 200) return reference.startsWith(o.text) ? "typed" : "wrong";
    return o.status === ERROR_STATUS[code] ? "typed" : "wrong";
  }
  if (o.status !== 200 || o.done === false) return "wrong";
  return o.text === reference ? "correct" : "wrong";
}

/** POSTs a completion and reads it to the end, or gives up after `limitMs` (hung). */
export async function complete(
  url: string,
  body: Record<string, unknown>,
  opts: { limitMs: number; signal?: AbortSignal; onText?: (text: string) => void },
): Promise<Outcome> {
  const t0 = performance.now();
  const limit = AbortSignal.timeout(opts.limitMs);
  const signal = opts.signal ? AbortSignal.any([limit, opts.signal]) : limit;
  const end = (o: Omit<Outcome, "ms" | "endedAt">): Outcome => {
    const now = performance.now();
    return { ...o, ms: now - t0, endedAt: now };
  };
  let status = 0, text = "";
  try {
    const r = await fetch(`${url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal,
    });
    status = r.status;
    const retryAfter = r.headers.get("retry-after");
    if (!(r.headers.get("content-type") ?? "").includes("text/event-stream")) {
      const j = await r.json();
      if (j.error) return end({ status, text, error: j.error, hung: false, retryAfter });
      return end({ status, text: j.choices[0].text, hung: false });
    }
    let error: Outcome["error"];
    let done = false, buf = "";
    const dec = new TextDecoder();
    for await (const chunk of r.body!) {
      buf += dec.decode(chunk, { stream: true });
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const event = buf.slice(0, i);
        buf = buf.slice(i + 2);
        for (const line of event.split("\n")) {
          if (!line.startsWith("data: ")) continue; // `: keep-alive` comments
          const data = line.slice(6);
          if (data === "[DONE]") {
            done = true;
            continue;
          }
          const j = JSON.parse(data);
          if (j.error) error = j.error;
          else if (j.choices?.[0]?.text) {
            text += j.choices[0].text;
            opts.onText?.(text);
          }
        }
      }
    }
    return end({ status, text, error, done, hung: false });
  } catch (err) {
    if (limit.aborted) return end({ status, text, hung: true });
    throw err;
  }
}
