/**
 * `deno task start`: brings up the whole system on one machine — nats-server (unless
 * NATS_URL names one), then prefill (with its compression), decode, the batch worker and the gateway, each its own
 * process — waits until /readyz says every service answers, and stops everything it started
 * on Ctrl-C or SIGTERM. A service that exits is restarted (at most 5 times a minute; past that,
 * everything stops, except for the batch worker, which alone is left off). A batch worker that
 * finds no JetStream says so and is not restarted: completions run on without batch jobs.
 *
 * JetStream's store (files, batches, results) lives in `KVRELAY_NATS_STORE_DIR` (default
 * `.data/nats` in the project, or under `KVRELAY_DATA_DIR`) and is kept across restarts. One
 * launcher at a time holds it (a lock file): nats-server does not lock its store, and two
 * servers on one store corrupt it; a second launcher runs on a temporary store and says so.
 *
 * Its own nats-server refuses anonymous clients: the launcher makes a fresh nkey per service
 * role, lists the public keys with each role's permissions in the server's config
 * (shared/nats/server_auth.ts), and hands each service its seed file (`NATS_NKEY`), all in a
 * private temporary directory removed on exit (the JetStream store is not in it). With NATS_URL, services use the `NATS_*`
 * credentials of the environment, or `<KVRELAY_NATS_NKEY_DIR>/<role>.nk` each when that is set
 * (what `infra/nats/gen_auth.ts` writes).
 * @module
 */
import { loadConfig, warnUnknownVariables } from "../../shared/config/mod.ts";
import { checkModelFiles, startOrExit } from "../../shared/config/startup.ts";
import type { Role } from "../../shared/nats/permissions.ts";
import { generateRoleKeys, renderAccounts, writeSeeds } from "../../shared/nats/server_auth.ts";
import { EXIT_NO_JETSTREAM } from "../../services/batch/config.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const SERVICES = ["prefill", "decode", "batch", "gateway"] as const;

function log(msg: string) {
  console.error(`[kvrelay] ${msg}`);
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function findNatsServer(): string {
  for (const p of ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]) {
    try {
      if (Deno.statSync(p).isFile) return p;
    } catch { /* next */ }
  }
  return "nats-server";
}

/**
 * Polls GET /readyz over a plain socket: `fetch` would be traced when OTEL_DENO is on, and
 * the launcher's probes would then show up as traces of their own.
 */
async function readyOnce(host: string, port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: host, port });
    try {
      await conn.write(
        new TextEncoder().encode(`GET /readyz HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`),
      );
      const buf = new Uint8Array(64);
      const n = await conn.read(buf);
      return n !== null && /^HTTP\/1\.[01] 200/.test(new TextDecoder().decode(buf.subarray(0, n)));
    } finally {
      conn.close();
    }
  } catch {
    return false;
  }
}

async function waitReady(host: string, port: number, ms: number, alive: () => boolean): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline && alive()) {
    if (await readyOnce(host, port)) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

export async function main(): Promise<number> {
  // The environment and the model's files are checked before anything starts.
  const config = await startOrExit("kvrelay", () => {
    const c = loadConfig();
    checkModelFiles(c);
    return c;
  });
  warnUnknownVariables("kvrelay");
  if (!config.modelPath) {
    log("no model configured: set KVRELAY_MODEL (and KVRELAY_TOKENIZER for a llama2.c .bin)");
    return 2;
  }
  const children = new Map<string, Deno.ChildProcess>();
  let stopping = false;
  let natsUrl = Deno.env.get("NATS_URL");
  /** This run's server config and seeds: private, removed on exit. */
  let runDir: string | undefined;
  /** The JetStream store's lock, held while this launcher runs. */
  let storeLock: Deno.FsFile | undefined;
  /** Each service's NATS credentials, on top of the inherited environment. */
  let credentials = new Map<Role, Record<string, string>>();

  const stopAll = async () => {
    stopping = true;
    const order = ["gateway", "batch", "decode", "prefill", "nats"];
    for (const name of order) {
      const c = children.get(name);
      if (!c) continue;
      try {
        c.kill("SIGTERM");
      } catch { /* gone */ }
      const t = setTimeout(() => {
        try {
          c.kill("SIGKILL");
        } catch { /* gone */ }
      }, 10_000);
      await c.status;
      clearTimeout(t);
    }
    if (runDir) await Deno.remove(runDir, { recursive: true }).catch(() => {});
  };

  if (!natsUrl) {
    const port = Number(Deno.env.get("KVRELAY_NATS_PORT") || 0) || freePort();
    let jsDir = config.natsStoreDir;
    try {
      await Deno.mkdir(jsDir, { recursive: true, mode: 0o700 });
      // held until this process exits, however it exits
      storeLock = await Deno.open(`${jsDir}/.kvrelay.lock`, { create: true, write: true });
      if (!(await storeLock.tryLock(true))) {
        storeLock.close();
        jsDir = "";
      }
    } catch (err) {
      log(`cannot use ${jsDir} for JetStream: ${(err as Error).message}; set KVRELAY_NATS_STORE_DIR`);
      return 2;
    }
    runDir = await Deno.makeTempDir({ prefix: "kvrelay-run-" }); // mode 0700
    if (!jsDir) {
      jsDir = `${runDir}/jetstream`;
      log(`${config.natsStoreDir} is in use by another launcher: JetStream is in ${jsDir}, removed on exit`);
    }
    const keys = generateRoleKeys();
    const conf = `${runDir}/nats-server.conf`;
    await Deno.writeTextFile(
      conf,
      [
        await Deno.readTextFile(`${ROOT}infra/nats/nats-server.conf`),
        "# Added by infra/launch/start.ts: one nkey user per service role, nobody else.",
        renderAccounts(keys, { responseExpiryMs: Math.max(600_000, 2 * config.requestTimeoutMs) }),
      ].join("\n"),
    );
    // Whatever NATS_* credentials the environment holds are for another server: replace them.
    const clear = { NATS_USER: "", NATS_PASSWORD: "", NATS_CREDS: "", NATS_NKEY: "" };
    credentials = new Map(
      [...(await writeSeeds(runDir, keys))].map(([role, env]) => [role, { ...clear, ...env }]),
    );
    // Flags override the file: the file holds the tuning and users, the flags this run's address and store.
    const args = [
      "-c",
      conf,
      "-a",
      "127.0.0.1",
      "-p",
      String(port),
      "-js",
      "-sd",
      jsDir,
    ];
    const nats = new Deno.Command(findNatsServer(), { args, stdout: "null", stderr: "inherit" }).spawn();
    children.set("nats", nats);
    natsUrl = `nats://127.0.0.1:${port}`;
    log(`nats-server on ${natsUrl} (nkey users per service; anonymous clients are refused)`);
    if (jsDir === config.natsStoreDir) log(`JetStream store: ${jsDir} (kept across restarts)`);
  } else if (Deno.env.get("KVRELAY_NATS_NKEY_DIR")) {
    const dir = Deno.env.get("KVRELAY_NATS_NKEY_DIR");
    for (const role of SERVICES) credentials.set(role, { NATS_NKEY: `${dir}/${role}.nk` });
  }

  const restarts = new Map<string, number[]>();
  const spawn = (name: (typeof SERVICES)[number]) => {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--cached-only", `${ROOT}services/${name}/main.ts`],
      env: {
        ...credentials.get(name),
        NATS_URL: natsUrl!,
        OTEL_SERVICE_NAME: Deno.env.get("OTEL_SERVICE_NAME") ?? `kvrelay-${name}`,
      },
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    children.set(name, child);
    child.status.then((s) => {
      if (stopping) return;
      if (name === "batch" && s.code === EXIT_NO_JETSTREAM) {
        log("batch jobs are off: the NATS server has no JetStream (the batch log above says more)");
        return;
      }
      const now = Date.now();
      const recent = (restarts.get(name) ?? []).filter((t) => now - t < 60_000);
      if (recent.length >= 5) {
        if (name === "batch") {
          log(`batch exited (code ${s.code}) too often; batch jobs are off, completions go on`);
          return;
        }
        log(`${name} exited (code ${s.code}) too often; stopping everything`);
        stopAll().then(() => Deno.exit(1));
        return;
      }
      restarts.set(name, [...recent, now]);
      log(`${name} exited (code ${s.code}); restarting`);
      setTimeout(() => !stopping && spawn(name), 500);
    });
  };

  const onSignal = () => {
    if (stopping) return;
    log("stopping");
    stopAll().then(() => Deno.exit(0));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);

  for (const s of SERVICES) spawn(s);
  const base = `http://${config.host}:${config.port}`;
  if (await waitReady(config.host, config.port, 120_000, () => !stopping)) {
    log(`ready: ${base}  (try: curl ${base}/v1/models)`);
  } else if (!stopping) {
    log(`not ready after 120 s; see the service logs above`);
  }
  await new Promise(() => {}); // run until a signal
  return 0;
}

const USAGE = `usage: npm start   (or: deno task start)

Starts nats-server (unless NATS_URL names one), prefill with its compression, decode, the batch
worker and the gateway on http://KVRELAY_HOST:KVRELAY_PORT (127.0.0.1:8080), and stops them all on
Ctrl-C. Settings are environment variables (README, Configuration), e.g.
  KVRELAY_MODEL=path/to/stories260K.bin KVRELAY_TOKENIZER=path/to/tok512.bin npm start`;

if (import.meta.main) {
  if (Deno.args.includes("--help") || Deno.args.includes("-h")) {
    console.log(USAGE);
    Deno.exit(0);
  }
  Deno.exit(await main());
}
