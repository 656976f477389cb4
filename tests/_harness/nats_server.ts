/**
 * Starts a real `nats-server` (Debian's, JetStream on) on a free port for a test, with its
 * own store directory; `stop()` ends it, `restart()` brings it back on the same port and
 * store. Tests never use a mock broker, nor the machine's shared server.
 *
 * Auth is on, as `npm start` runs it: one nkey user per service role with that role's
 * permissions (shared/nats/permissions.ts); `serviceEnv(role)` is the environment that hands a
 * service its credentials. A client without credentials (a test's own client) is the test
 * operator, allowed everything, unless `anonymous: "refused"`; then only credentials get in.
 * @module
 */
import type { NatsAuth } from "../../shared/nats/auth.ts";
import type { Role } from "../../shared/nats/permissions.ts";
import { generateRoleKeys, renderAccounts, writeSeeds } from "../../shared/nats/server_auth.ts";

export interface NatsServerOptions {
  jetstream?: boolean;
  maxPayload?: number;
  /** Extra lines for the config file. */
  extraConfig?: string;
  /** Per-role nkey users (default true); false: an open server, as before auth existed. */
  auth?: boolean;
  /** A client without credentials: the test operator (default), or refused like in production. */
  anonymous?: "operator" | "refused";
}

export interface NatsServer {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  /** The environment that gives a service of `role` its credentials (empty without auth). */
  serviceEnv(role: Role): Record<string, string>;
  /** Credentials of `role`, for a test client that acts as that service. */
  authAs(role: Role): NatsAuth;
  /** The test operator's credentials: every subject. */
  readonly operator: NatsAuth;
  stop(): Promise<void>;
  restart(): Promise<void>;
}

/** Servers this process started, by URL, so `startServices(url)` finds their credentials. */
const running = new Map<string, NatsServer>();

/** The server this process started at `url`, if any. */
export function serverAt(url: string): NatsServer | undefined {
  return running.get(url);
}

export const NATS_SERVER_BIN = ["/usr/sbin/nats-server", "/usr/bin/nats-server", "nats-server"].find((p) => {
  try {
    return p.includes("/") ? Deno.statSync(p).isFile : true;
  } catch {
    return false;
  }
})!;

/** A port the OS reports free right now. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Resolves once a nats-server on `port` greets with INFO. */
export async function waitForPort(port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      // The server greets with INFO once it is ready to accept clients.
      const buf = new Uint8Array(5);
      await c.read(buf);
      c.close();
      if (new TextDecoder().decode(buf).startsWith("INFO")) return;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`nats-server did not open port ${port} within ${ms} ms`);
}

export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServer> {
  const port = freePort();
  const storeDir = await Deno.makeTempDir({ prefix: "kvrelay-nats-" });
  const conf = `${storeDir}/nats.conf`;
  const auth = opts.auth !== false;
  const keys = auth ? generateRoleKeys() : [];
  const envs = await writeSeeds(storeDir, keys);
  const operator: NatsAuth = auth
    ? { method: "password", user: "kvrelay-test", password: crypto.randomUUID() }
    : { method: "none" };
  await Deno.writeTextFile(
    conf,
    [
      `listen: 127.0.0.1:${port}`,
      `max_payload: ${opts.maxPayload ?? 8 * 1024 * 1024}`,
      opts.jetstream === false ? "" : `jetstream { store_dir: "${storeDir}/js" }`,
      auth && operator.method === "password"
        ? renderAccounts(keys, {
          jetstream: opts.jetstream !== false,
          extraUsers: [`{ user: "${operator.user}", password: "${operator.password}" }`],
        })
        : "",
      auth && opts.anonymous !== "refused" ? `no_auth_user: "kvrelay-test"` : "",
      opts.extraConfig ?? "",
    ].join("\n"),
  );
  let child: Deno.ChildProcess | undefined;
  const launch = async () => {
    child = new Deno.Command(NATS_SERVER_BIN, {
      args: ["-c", conf],
      stdout: "null",
      stderr: "null",
    }).spawn();
    await waitForPort(port, 10_000);
  };
  const stop = async () => {
    if (!child) return;
    const c = child;
    child = undefined;
    try {
      c.kill("SIGTERM");
    } catch { /* already gone */ }
    await c.status;
  };
  await launch();
  const url = `nats://127.0.0.1:${port}`;
  const server: NatsServer = {
    url,
    port,
    storeDir,
    serviceEnv: (role) => ({ ...envs.get(role) }),
    authAs: (role) => {
      const seedFile = envs.get(role)?.NATS_NKEY;
      return seedFile ? { method: "nkey", seedFile } : { method: "none" };
    },
    operator,
    stop: async () => {
      running.delete(url);
      await stop();
      await Deno.remove(storeDir, { recursive: true }).catch(() => {});
    },
    restart: async () => {
      await stop();
      await launch();
    },
  };
  running.set(url, server);
  return server;
}

/**
 * Speaks the NATS protocol by hand, as any client could: reads INFO, sends CONNECT with the
 * fields `connectFields(info)` gives, then PING, and returns the server's answer line: `PONG`
 * when it let the client in, `-ERR '...'` when it did not. (A refused nats.js connection can
 * raise a late socket error nobody catches; a raw socket has no such race.)
 */
export async function probeConnect(
  port: number,
  connectFields: (info: { nonce?: string }) => Record<string, unknown> = () => ({}),
): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const enc = new TextEncoder(), dec = new TextDecoder();
  let buf = "";
  const line = async (): Promise<string> => {
    while (!buf.includes("\r\n")) {
      const chunk = new Uint8Array(4096);
      const n = await conn.read(chunk);
      if (n === null) return buf || "(closed)";
      buf += dec.decode(chunk.subarray(0, n));
    }
    const i = buf.indexOf("\r\n");
    const out = buf.slice(0, i);
    buf = buf.slice(i + 2);
    return out;
  };
  try {
    const info = JSON.parse((await line()).replace(/^INFO /, ""));
    const fields = {
      verbose: false,
      pedantic: false,
      lang: "probe",
      version: "0",
      protocol: 1,
      ...connectFields(info),
    };
    await conn.write(enc.encode(`CONNECT ${JSON.stringify(fields)}\r\nPING\r\n`));
    return await line();
  } finally {
    try {
      conn.close();
    } catch { /* closed by the server */ }
  }
}
