/**
 * Starts the real kvrelay services as separate processes against a test's own nats-server,
 * the way `deno task start` does (each with its role's NATS credentials), and stops them.
 * @module
 */
import { REPO_DIR } from "./paths.ts";
import { freePort, type NatsServer, serverAt } from "./nats_server.ts";

export type ServiceName = "prefill" | "decode" | "gateway";

export interface RunningServices {
  baseUrl: string;
  stop(name?: ServiceName): Promise<void>;
  start(name: ServiceName): void;
  /** The process id of each running service. */
  pids(): Partial<Record<ServiceName, number>>;
}

/**
 * `nats`: a server of tests/_harness (or its URL); its services get their role's credentials.
 * `env` goes to every service, `perService[name]` to that one on top (e.g. KVRELAY_GPU).
 */
export async function startServices(
  nats: NatsServer | string,
  env: Record<string, string>,
  perService: Partial<Record<ServiceName, Record<string, string>>> = {},
): Promise<RunningServices> {
  const server = typeof nats === "string" ? serverAt(nats) : nats;
  const natsUrl = typeof nats === "string" ? nats : nats.url;
  const port = freePort();
  const children = new Map<ServiceName, Deno.ChildProcess>();
  const start = (name: ServiceName) => {
    children.set(
      name,
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--cached-only", `${REPO_DIR}/services/${name}/main.ts`],
        env: {
          ...env,
          ...perService[name],
          ...server?.serviceEnv(name),
          NATS_URL: natsUrl,
          KVRELAY_PORT: String(port),
          // One service name each, as infra/launch/start.ts gives them.
          ...(env.OTEL_DENO ? { OTEL_SERVICE_NAME: `kvrelay-${name}` } : {}),
        },
        stdout: "null",
        stderr: Deno.env.get("KVRELAY_TEST_LOGS") ? "inherit" : "null",
      }).spawn(),
    );
  };
  const stop = async (name?: ServiceName) => {
    for (const [n, c] of [...children]) {
      if (name && n !== name) continue;
      children.delete(n);
      try {
        c.kill("SIGTERM");
      } catch { /* gone */ }
      await c.status;
    }
  };
  for (const s of ["prefill", "decode", "gateway"] as const) start(s);
  const baseUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  while (true) {
    try {
      const r = await fetch(`${baseUrl}/readyz`);
      await r.body?.cancel();
      if (r.ok) break;
    } catch { /* not yet */ }
    if (Date.now() > deadline) {
      await stop();
      throw new Error("services did not become ready within 60 s");
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const pids = () => Object.fromEntries([...children].map(([n, c]) => [n, c.pid]));
  return { baseUrl, stop, start, pids };
}
