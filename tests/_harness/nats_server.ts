/**
 * Starts a real `nats-server` (Debian's, JetStream on) on a free port for a test, with its
 * own store directory; `stop()` ends it, `restart()` brings it back on the same port and
 * store. Tests never use a mock broker, nor the machine's shared server.
 * @module
 */

export interface NatsServerOptions {
  jetstream?: boolean;
  maxPayload?: number;
  /** Extra lines for the config file. */
  extraConfig?: string;
}

export interface NatsServer {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  stop(): Promise<void>;
  restart(): Promise<void>;
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

async function waitForPort(port: number, ms: number): Promise<void> {
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
  await Deno.writeTextFile(
    conf,
    [
      `listen: 127.0.0.1:${port}`,
      `max_payload: ${opts.maxPayload ?? 8 * 1024 * 1024}`,
      opts.jetstream === false ? "" : `jetstream { store_dir: "${storeDir}/js" }`,
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
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    stop: async () => {
      await stop();
      await Deno.remove(storeDir, { recursive: true }).catch(() => {});
    },
    restart: async () => {
      await stop();
      await launch();
    },
  };
}
