/**
 * Clean stop on SIGTERM/SIGINT: run the registered cleanups (newest first, each bounded by
 * a deadline), then `Deno.exit()`. Exiting through `Deno.exit()` is what lets Deno's
 * OpenTelemetry exporter flush; a process killed by the default signal action loses its
 * last spans. A second signal while cleaning up exits at once.
 * @module
 */

/** A cleanup; it gets a signal that aborts at the deadline. */
export type Cleanup = (signal: AbortSignal) => unknown | Promise<unknown>;

/** Options of {@linkcode installShutdown}. */
export interface ShutdownOptions {
  /** Signals to handle; SIGTERM and SIGINT unless told. */
  signals?: Deno.Signal[];
  /** Deadline for all cleanups together, ms; 10 s unless told. */
  timeoutMs?: number;
  /** Called with the signal name before the cleanups run (e.g. to log). */
  onSignal?: (signal: Deno.Signal) => void;
}

const cleanups: Cleanup[] = [];
let installed: { signals: Deno.Signal[]; handler: Map<Deno.Signal, () => void> } | undefined;
let stopping = false;
let timeoutMs = 10_000;

/**
 * Registers `fn` to run at shutdown (NATS drain, server close, ...). Returns a function
 * that unregisters it.
 *
 * @example
 * ```ts
 * const nc = await connect({ servers });
 * onShutdown(() => nc.drain());
 * ```
 */
export function onShutdown(fn: Cleanup): () => void {
  cleanups.push(fn);
  return () => {
    const i = cleanups.indexOf(fn);
    if (i >= 0) cleanups.splice(i, 1);
  };
}

/**
 * Installs the signal handlers (once per process; later calls only update options).
 *
 * @example
 * ```ts
 * installShutdown({ onSignal: (s) => console.error(`prefill: ${s}, stopping`) });
 * ```
 */
export function installShutdown(options: ShutdownOptions = {}): void {
  timeoutMs = options.timeoutMs ?? timeoutMs;
  if (installed) return;
  const signals = options.signals ?? ["SIGTERM", "SIGINT"];
  const handler = new Map<Deno.Signal, () => void>();
  for (const sig of signals) {
    const h = () => {
      if (stopping) Deno.exit(1);
      options.onSignal?.(sig);
      shutdown(0);
    };
    handler.set(sig, h);
    Deno.addSignalListener(sig, h);
  }
  installed = { signals, handler };
}

/** Removes the signal handlers (tests, or a process that takes over its own signals). */
export function uninstallShutdown(): void {
  if (!installed) return;
  for (const [sig, h] of installed.handler) Deno.removeSignalListener(sig, h);
  installed = undefined;
}

/**
 * Runs every cleanup (newest first) within the deadline. Returns the errors, not thrown:
 * one failing cleanup must not keep the others from running.
 */
export async function runCleanups(deadlineMs = timeoutMs): Promise<unknown[]> {
  const signal = AbortSignal.timeout(deadlineMs);
  const errors: unknown[] = [];
  const aborted = new Promise<void>((resolve) =>
    signal.addEventListener("abort", () => resolve(), { once: true })
  );
  for (const fn of cleanups.splice(0).reverse()) {
    if (signal.aborted) {
      errors.push(new Error("shutdown deadline passed before this cleanup ran"));
      continue;
    }
    try {
      const finished = Promise.resolve().then(() => fn(signal)).then(() => true);
      if (!await Promise.race([finished, aborted.then(() => false)])) {
        errors.push(new Error(`cleanup did not finish within ${deadlineMs} ms`));
      }
    } catch (err) {
      errors.push(err);
    }
  }
  return errors;
}

/**
 * Runs the cleanups, then exits with `code` (1 when a cleanup failed) through `Deno.exit`,
 * so the OpenTelemetry exporter flushes. For a service that decides to stop on its own.
 */
export async function shutdown(code = 0): Promise<never> {
  stopping = true;
  const errors = await runCleanups();
  for (const err of errors) console.error("shutdown: cleanup failed:", err);
  Deno.exit(errors.length > 0 && code === 0 ? 1 : code);
}
