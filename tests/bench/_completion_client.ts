/**
 * One /v1/completions request as the benches time it: non-streaming (latency and usage) or
 * streaming (also the first and the last token's arrival). Never throws: a failure is the
 * result's `error`, so one bad request does not end a run.
 * @module
 */
import type { KvUsage } from "../../shared/handoff/contract.ts";

export interface CompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  kv: KvUsage;
}

export interface CompletionResult {
  /** Request sent to last byte received. */
  ms: number;
  /** Request sent to the first chunk with text (streaming only). */
  ttftMs?: number;
  /** Request sent to the last chunk with text (streaming only). */
  lastTokenMs?: number;
  /** The generated text (streaming only). */
  text?: string;
  usage?: CompletionUsage;
  error?: string;
}

/** Sends `body` (streaming when `body.stream`) with a deadline of `timeoutMs`. */
export async function timeCompletion(
  baseUrl: string,
  body: Record<string, unknown>,
  timeoutMs: number,
): Promise<CompletionResult> {
  const t0 = performance.now();
  try {
    const r = await fetch(`${baseUrl}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(Math.max(1, timeoutMs)),
    });
    if (!r.ok || !body.stream) {
      const text = await r.text();
      const ms = performance.now() - t0;
      if (!r.ok) return { ms, error: `HTTP ${r.status}: ${text.slice(0, 200)}` };
      return { ms, usage: JSON.parse(text).usage };
    }
    const out: CompletionResult = { ms: 0 };
    let buf = "";
    for await (const chunk of r.body!.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const data = buf.slice(0, i).split("\n").filter((l) => l.startsWith("data:"))
          .map((l) => l.slice(5).trim()).join("");
        buf = buf.slice(i + 2);
        if (!data || data === "[DONE]") continue;
        const ev = JSON.parse(data);
        if (ev.error) out.error = JSON.stringify(ev.error).slice(0, 200);
        if (ev.choices?.[0]?.text) {
          out.text = (out.text ?? "") + ev.choices[0].text;
          out.lastTokenMs = performance.now() - t0;
          out.ttftMs ??= out.lastTokenMs;
        }
        if (ev.usage) out.usage = ev.usage;
      }
    }
    out.ms = performance.now() - t0;
    return out;
  } catch (err) {
    return { ms: performance.now() - t0, error: `${(err as Error)?.name}: ${(err as Error)?.message}` };
  }
}
