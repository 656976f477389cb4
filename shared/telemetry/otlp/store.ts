/**
 * The span store of the `traces` tool: a JSONL file, one `FlatSpan` per line, appended in
 * arrival order. Readers skip lines they cannot parse (a torn last line after a crash).
 * @module
 */
import type { FlatSpan } from "./span.ts";

/** An append-only JSONL span file; writes are serialized. */
export interface SpanStore {
  readonly path: string;
  append(spans: FlatSpan[]): Promise<void>;
}

/**
 * Opens `path` for appending (creating it and its directory).
 *
 * @example
 * ```ts
 * const store = await openSpanStore("out/traces.jsonl");
 * await store.append(spans);
 * ```
 */
export async function openSpanStore(path: string): Promise<SpanStore> {
  const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : "";
  if (dir) await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(path, "", { append: true });
  // A crash can leave a torn last line: end it so the next span starts a line of its own.
  const file = await Deno.open(path, { read: true });
  try {
    const size = (await file.stat()).size;
    if (size > 0) {
      const last = new Uint8Array(1);
      await file.seek(size - 1, Deno.SeekMode.Start);
      await file.read(last);
      if (last[0] !== 0x0a) await Deno.writeTextFile(path, "\n", { append: true });
    }
  } finally {
    file.close();
  }
  let tail: Promise<void> = Promise.resolve();
  return {
    path,
    append(spans) {
      if (spans.length === 0) return tail;
      const lines = spans.map((s) => JSON.stringify(s) + "\n").join("");
      const next = tail.then(() => Deno.writeTextFile(path, lines, { append: true }));
      tail = next.catch(() => {});
      return next;
    },
  };
}

/** Every span in the store at `path`, in file order; unparsable lines are skipped. */
export async function readSpans(path: string): Promise<FlatSpan[]> {
  const text = await Deno.readTextFile(path);
  const out: FlatSpan[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      const s = JSON.parse(line);
      if (s && typeof s.traceId === "string" && typeof s.spanId === "string") out.push(s as FlatSpan);
    } catch { /* torn or foreign line */ }
  }
  return out;
}
