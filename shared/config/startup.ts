/**
 * How a process that cannot start says so: a bad setting (a `KVRELAY_*` variable out of range,
 * a model path that does not exist, NATS out of reach) ends it with one line on stderr and exit
 * code 1, not a stack trace. Anything else is a bug and keeps its stack.
 *
 * @example
 * ```ts ignore
 * const config = await startOrExit("gateway", () => Promise.resolve(loadConfig()));
 * ```
 * @module
 */
import { KvrelayError } from "../errors.ts";
import type { Config } from "./mod.ts";

/** Runs `start`; a `KvrelayError` from it prints `[name] message` and exits with 1. */
export async function startOrExit<T>(name: string, start: () => Promise<T> | T): Promise<T> {
  try {
    return await start();
  } catch (err) {
    if (!(err instanceof KvrelayError)) throw err;
    const setting = err.param && /^[A-Z][A-Z0-9_]+$/.test(err.param) ? ` (${err.param})` : "";
    console.error(`[${name}] cannot start${setting}: ${err.message}`);
    Deno.exit(1);
  }
}

/**
 * Throws a `bad_request` naming the variable when the model or tokenizer path of `config` does
 * not exist, so a launcher finds it before it starts anything.
 */
export function checkModelFiles(config: Pick<Config, "modelPath" | "tokenizerPath">): void {
  const check = (path: string | undefined, variable: string) => {
    if (!path) return;
    try {
      Deno.statSync(path);
    } catch (err) {
      const why = err instanceof Deno.errors.NotFound ? "no such file or directory" : (err as Error).message;
      throw new KvrelayError("bad_request", `${variable}=${path}: ${why}`, { param: variable });
    }
  };
  check(config.modelPath, "KVRELAY_MODEL");
  check(config.tokenizerPath, "KVRELAY_TOKENIZER");
}
