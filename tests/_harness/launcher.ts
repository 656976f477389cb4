/**
 * `npm start` (infra/launch/start.ts) as a test runs it: a launcher process on a free HTTP port
 * with the environment the test gives, its stderr kept, readiness polled on /readyz, and a stop
 * that sends SIGTERM and returns the exit code.
 * @module
 */
import { freePort } from "./nats_server.ts";
import { REPO_DIR, STORIES260K } from "./paths.ts";

/** Polls `f` every 200 ms until it gives a value; throws `<what> within <ms> ms` past the time. */
export async function waitFor<T>(what: string, ms: number, f: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try {
      const v = await f();
      if (v !== undefined) return v;
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} within ${ms} ms`);
}

/** Waits until `base`'s /readyz answers 200. */
export function waitReady(base: string, ms = 60_000): Promise<true> {
  return waitFor("ready", ms, async () => {
    const r = await fetch(`${base}/readyz`);
    await r.body?.cancel();
    return r.ok ? true : undefined;
  });
}

export interface Launched {
  base: string;
  port: number;
  child: Deno.ChildProcess;
  /** What the launcher and its services wrote to stderr so far. */
  log(): string;
  ready(ms?: number): Promise<true>;
  /** SIGTERM, then the exit code once every process it started has stopped. */
  stop(): Promise<number>;
}

/** Starts `infra/launch/start.ts` with `env` (KVRELAY_PORT defaults to a free port). */
export function launch(env: Record<string, string>): Launched {
  const port = Number(env.KVRELAY_PORT ?? freePort());
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--cached-only", `${REPO_DIR}/infra/launch/start.ts`],
    env: { ...env, KVRELAY_PORT: String(port) },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let log = "";
  const reading = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) log += chunk;
  })();
  const base = `http://127.0.0.1:${port}`;
  return {
    base,
    port,
    child,
    log: () => log,
    ready: (ms) => waitReady(base, ms),
    stop: async () => {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      const s = await child.status;
      await reading;
      return s.code;
    },
  };
}

/**
 * `npm start` as on a fresh machine: its own nats-server on a free port (`natsPort`), a data
 * directory of its own (the checkout's .data/ is the user's, and another test may hold its
 * lock), and stories260K; `env` adds to or overrides that.
 */
export async function launchStandalone(
  env: Record<string, string> = {},
): Promise<Launched & { natsPort: number }> {
  const natsPort = freePort();
  const launched = launch({
    KVRELAY_NATS_PORT: String(natsPort),
    KVRELAY_DATA_DIR: await Deno.makeTempDir({ prefix: "kvrelay-data-" }),
    KVRELAY_MODEL: STORIES260K.model,
    KVRELAY_TOKENIZER: STORIES260K.tokenizer,
    NATS_URL: "",
    ...env,
  });
  return { ...launched, natsPort };
}
