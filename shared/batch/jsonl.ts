/**
 * Parses a batch input file (JSONL of `{custom_id, method, url, body}`) into work-queue
 * tasks. A bad line becomes a task that carries its error, so it lands in the error file
 * and the valid lines still run.
 * @module
 */
import { BATCH_ENDPOINTS, type LineTask } from "./types.ts";

/** Splits and checks each line; blank lines are skipped. */
export function parseBatchInput(batchId: string, text: string): LineTask[] {
  const tasks: LineTask[] = [];
  const seen = new Set<string>();
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].trim();
    if (!raw) continue;
    const fail = (customId: string | null, code: string, message: string) =>
      tasks.push({ batchId, index: i, customId, error: { code, message: `line ${i + 1}: ${message}` } });
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch (e) {
      fail(null, "invalid_json_line", `not valid JSON (${(e as Error).message})`);
      continue;
    }
    if (!v || typeof v !== "object" || Array.isArray(v)) {
      fail(null, "invalid_json_line", "must be a JSON object");
      continue;
    }
    const o = v as Record<string, unknown>;
    if (typeof o.custom_id !== "string" || !o.custom_id) {
      fail(null, "missing_custom_id", "'custom_id' must be a non-empty string");
      continue;
    }
    if (seen.has(o.custom_id)) {
      fail(o.custom_id, "duplicate_custom_id", `custom_id '${o.custom_id}' appears more than once`);
      continue;
    }
    seen.add(o.custom_id);
    if (o.method !== undefined && o.method !== "POST") {
      fail(o.custom_id, "invalid_method", "'method' must be POST");
      continue;
    }
    if (typeof o.url !== "string" || !(BATCH_ENDPOINTS as readonly string[]).includes(o.url)) {
      fail(
        o.custom_id,
        "invalid_url",
        `unknown url ${JSON.stringify(o.url)}; use ${BATCH_ENDPOINTS.join(" or ")}`,
      );
      continue;
    }
    if (!o.body || typeof o.body !== "object" || Array.isArray(o.body)) {
      fail(o.custom_id, "invalid_body", "'body' must be a JSON object");
      continue;
    }
    tasks.push({
      batchId,
      index: i,
      customId: o.custom_id,
      url: o.url,
      body: o.body as Record<string, unknown>,
    });
  }
  return tasks;
}

/** The results-bucket key part of a line: by custom_id, or by line number for lines without a usable one. */
export async function lineKey(task: Pick<LineTask, "customId" | "index" | "error">): Promise<string> {
  const basis = task.customId !== null && task.error?.code !== "duplicate_custom_id"
    ? `c:${task.customId}`
    : `l:${task.index}`;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(basis)));
  return Array.from(digest.subarray(0, 16), (b) => b.toString(16).padStart(2, "0")).join("");
}
