/**
 * A fleet of real kvrelay processes against a test's own nats-server, for fault tests: any
 * number of instances per service, each with its own name (`decode-1`, `decode-2`, ...), so a
 * test can `kill -9` one, stop (SIGSTOP) and continue it, or start another. Each instance gets
 * its role's NATS credentials, as `deno task start` gives them.
 * @module
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { Svcm } from "@nats-io/services";
import { REPO_DIR } from "./paths.ts";
import { freePort, type NatsServer } from "./nats_server.ts";

export type FleetService = "prefill" | "decode" | "gateway" | "batch";

export interface Fleet {
  readonly baseUrl: string;
  /** Starts one more instance (`env` on top of the fleet's); returns its name. */
  start(service: FleetService, env?: Record<string, string>): string;
  /** Sends a signal to one instance (SIGKILL, SIGSTOP, SIGCONT, SIGTERM). */
  signal(name: string, sig: Deno.Signal): void;
  /** `kill -9` of one instance; resolves once it is gone. */
  kill(name: string): Promise<void>;
  /** Names of the instances of `service` that were started and not killed. */
  running(service: FleetService): string[];
  /** Ends every instance (a stopped one is continued first, so SIGTERM reaches it). */
  stop(): Promise<void>;
}

/** The server a fleet runs against: a tests/_harness server, or one node of a cluster. */
export type FleetNats = Pick<NatsServer, "url" | "serviceEnv">;

/**
 * Starts `counts` instances of each service (default one prefill, decode and gateway) and waits for
 * /readyz. `placement(service, n)` adds environment for the n-th instance of a service (its
 * `NATS_URL`, to spread a fleet over the nodes of a cluster).
 */
export async function startFleet(
  nats: FleetNats,
  env: Record<string, string>,
  counts: Partial<Record<FleetService, number>> = {},
  placement?: (service: FleetService, n: number) => Record<string, string>,
): Promise<Fleet> {
  const port = freePort();
  const children = new Map<string, { service: FleetService; child: Deno.ChildProcess }>();
  const serial = new Map<FleetService, number>();
  const logs = Deno.env.get("KVRELAY_TEST_LOGS") ? "inherit" : "null";
  const start = (service: FleetService, extra: Record<string, string> = {}) => {
    const n = (serial.get(service) ?? 0) + 1;
    serial.set(service, n);
    const name = `${service}-${n}`;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--cached-only", `${REPO_DIR}/services/${service}/main.ts`],
      env: {
        ...env,
        ...nats.serviceEnv(service),
        NATS_URL: nats.url,
        ...placement?.(service, n),
        ...extra,
        KVRELAY_PORT: String(port),
      },
      stdout: "null",
      stderr: logs,
    }).spawn();
    children.set(name, { service, child });
    return name;
  };
  const get = (name: string) => {
    const c = children.get(name);
    if (!c) throw new Error(`no instance ${name}`);
    return c;
  };
  const fleet: Fleet = {
    baseUrl: `http://127.0.0.1:${port}`,
    start,
    signal: (name, sig) => get(name).child.kill(sig),
    kill: async (name) => {
      const { child } = get(name);
      children.delete(name);
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.status;
    },
    running: (service) => [...children].filter(([, c]) => c.service === service).map(([n]) => n),
    stop: async () => {
      const all = [...children.values()];
      children.clear();
      await Promise.all(all.map(async ({ child }) => {
        for (const sig of ["SIGCONT", "SIGTERM"] as const) {
          try {
            child.kill(sig);
          } catch { /* gone */ }
        }
        const t = setTimeout(() => {
          try {
            child.kill("SIGKILL");
          } catch { /* gone */ }
        }, 10_000);
        await child.status;
        clearTimeout(t);
      }));
    },
  };
  const want = { prefill: 1, decode: 1, gateway: 1, ...counts };
  for (const s of ["prefill", "decode", "batch", "gateway"] as const) {
    for (let i = 0; i < (want[s] ?? 0); i++) start(s);
  }
  const deadline = Date.now() + 60_000;
  while (true) {
    try {
      const r = await fetch(`${fleet.baseUrl}/readyz`);
      await r.body?.cancel();
      if (r.ok) break;
    } catch { /* not yet */ }
    if (Date.now() > deadline) {
      await fleet.stop();
      throw new Error("the fleet did not become ready within 60 s");
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return fleet;
}

/** Resolves once `n` instances of `service` answer `$SRV.PING` (throws after `ms`). */
export async function waitInstances(
  nc: NatsConnection,
  service: string,
  n: number,
  ms = 60_000,
): Promise<void> {
  const client = new Svcm(nc).client({ strategy: "timer", maxWait: 300 });
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    let seen = 0;
    try {
      for await (const _ of await client.ping(service)) seen++;
    } catch { /* none yet */ }
    if (seen >= n) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${n} instances of ${service} did not answer within ${ms} ms`);
}

/** Each instance's `$SRV.STATS` data for `service` (the decode instances' block stores, ...), with its `id`. */
export async function serviceStats(nc: NatsConnection, service: string): Promise<Record<string, unknown>[]> {
  const client = new Svcm(nc).client({ strategy: "timer", maxWait: 500 });
  const out: Record<string, unknown>[] = [];
  for await (const s of await client.stats(service)) {
    const data = (s.endpoints ?? []).find((ep) => ep.data && typeof ep.data === "object")?.data;
    if (data) out.push({ ...(data as Record<string, unknown>), id: s.id });
  }
  return out;
}
