/**
 * Runs a bench script's child in its own Deno process under a deadline and collects the
 * JSON lines it prints, one object a line, as they come: a child that hangs or crashes
 * (a WebGPU run, say) is stopped and costs only itself, and leaves the lines it printed.
 * Knows nothing of what the lines mean.
 * @module
 */
import { REPO_DIR } from "../_harness/paths.ts";

/** Options of {@linkcode runChild}. */
export interface ChildOptions<L> {
  /** Stop the child (SIGTERM) after this many seconds. */
  timeoutS: number;
  /** Called with each line as it arrives (progress output). */
  onLine?: (line: L) => void;
}

/** What a child left: its JSON lines, its stderr and, when it failed, why. */
export interface ChildResult<L> {
  lines: L[];
  stderr: string;
  /** Set when the child did not exit with 0: the deadline or exit code, and stderr's last lines. */
  note?: string;
}

/**
 * Runs `deno run -A --cached-only ...args` in the repository root under a deadline; lines
 * of stdout that start with `{` are parsed as JSON, the others ignored.
 *
 * @example
 * ```ts
 * const { lines, note } = await runChild<{ kind: string }>(
 *   [new URL(import.meta.url).pathname, "--child"],
 *   { timeoutS: 90, onLine: (l) => console.error(l.kind) },
 * );
 * ```
 */
export async function runChild<L>(args: string[], opts: ChildOptions<L>): Promise<ChildResult<L>> {
  const proc = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--cached-only", ...args],
    cwd: REPO_DIR,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(opts.timeoutS * 1000),
  }).spawn();
  const lines: L[] = [];
  let stderr = "";
  const readOut = (async () => {
    let buf = "";
    for await (const chunk of proc.stdout.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const text = buf.slice(0, i).trim();
        buf = buf.slice(i + 1);
        if (!text.startsWith("{")) continue;
        const line = JSON.parse(text) as L;
        lines.push(line);
        opts.onLine?.(line);
      }
    }
  })();
  const readErr = (async () => {
    for await (const chunk of proc.stderr.pipeThrough(new TextDecoderStream())) stderr += chunk;
  })();
  const status = await proc.status;
  await Promise.all([readOut, readErr]);
  if (status.success) return { lines, stderr };
  const why = status.signal
    ? `stopped after ${opts.timeoutS} s (${status.signal})`
    : `exit code ${status.code}`;
  const last = stderr.trim().split("\n").filter((l) => !/XDG_RUNTIME_DIR/.test(l)).slice(-3).join(" | ");
  return { lines, stderr, note: `${why}${last ? `: ${last.slice(0, 400)}` : ""}` };
}
