/**
 * A cluster of real `nats-server` processes on one host, run from the shipped node config
 * (infra/nats/cluster.conf, each node with its own environment) and one shared accounts file:
 * per-role nkey users as `npm start` makes them, plus the test operator. `kill(i)` is a
 * `kill -9` of node i; `restart(i)` brings it back on its ports and store.
 * @module
 */
import type { NatsAuth } from "../../shared/nats/auth.ts";
import type { Role } from "../../shared/nats/permissions.ts";
import { generateRoleKeys, renderAccounts, writeSeeds } from "../../shared/nats/server_auth.ts";
import { freePort, NATS_SERVER_BIN, waitForPort } from "./nats_server.ts";
import { REPO_DIR } from "./paths.ts";

export interface NatsCluster {
  /** Each node's client URL. */
  readonly urls: string[];
  /** The environment that gives a service of `role` its credentials. */
  serviceEnv(role: Role): Record<string, string>;
  /** The test operator's credentials: every subject. */
  readonly operator: NatsAuth;
  kill(node: number): Promise<void>;
  restart(node: number): Promise<void>;
  stop(): Promise<void>;
}

/** Starts `size` nodes routed to each other; resolves once every node takes clients. */
export async function startNatsCluster(size = 3): Promise<NatsCluster> {
  const dir = await Deno.makeTempDir({ prefix: "kvrelay-cluster-" });
  await Deno.copyFile(`${REPO_DIR}/infra/nats/cluster.conf`, `${dir}/cluster.conf`);
  const keys = generateRoleKeys();
  const envs = await writeSeeds(dir, keys);
  const operator: NatsAuth = { method: "password", user: "kvrelay-test", password: crypto.randomUUID() };
  await Deno.writeTextFile(
    `${dir}/kvrelay-accounts.conf`,
    renderAccounts(keys, { extraUsers: [`{ user: "${operator.user}", password: "${operator.password}" }`] }),
  );
  const nodes = Array.from({ length: size }, (_, i) => ({
    name: `kvrelay-${i + 1}`,
    port: freePort(),
    clusterPort: freePort(),
    store: `${dir}/store-${i + 1}`,
    child: undefined as Deno.ChildProcess | undefined,
  }));
  const routes = Object.fromEntries(
    nodes.map((n, i) => [`ROUTE_${i + 1}`, `nats-route://127.0.0.1:${n.clusterPort}`]),
  );
  const launch = async (i: number) => {
    const n = nodes[i];
    n.child = new Deno.Command(NATS_SERVER_BIN, {
      args: ["-c", `${dir}/cluster.conf`],
      env: {
        NODE_NAME: n.name,
        CLIENT_LISTEN: `127.0.0.1:${n.port}`,
        CLUSTER_LISTEN: `127.0.0.1:${n.clusterPort}`,
        STORE_DIR: n.store,
        ...routes,
      },
      stdout: "null",
      stderr: Deno.env.get("KVRELAY_TEST_LOGS") ? "inherit" : "null",
    }).spawn();
    await waitForPort(n.port, 10_000);
  };
  const end = async (i: number, sig: Deno.Signal) => {
    const c = nodes[i].child;
    nodes[i].child = undefined;
    if (!c) return;
    try {
      c.kill(sig);
    } catch { /* gone */ }
    await c.status;
  };
  await Promise.all(nodes.map((_, i) => launch(i)));
  return {
    urls: nodes.map((n) => `nats://127.0.0.1:${n.port}`),
    serviceEnv: (role) => ({ ...envs.get(role) }),
    operator,
    kill: (i) => end(i, "SIGKILL"),
    restart: (i) => launch(i),
    stop: async () => {
      await Promise.all(nodes.map((_, i) => end(i, "SIGTERM")));
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
