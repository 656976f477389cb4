/**
 * A NATS server of your own, as README "Run across hosts" sets it up: infra/nats/gen_auth.ts
 * writes the accounts and one seed per role, infra/nats/multi-host.conf includes them and turns
 * TLS on with client certificates, and services connect with `NATS_NKEY` and `NATS_TLS_*`
 * (`npm start` with NATS_URL and KVRELAY_NATS_NKEY_DIR gives each its own seed).
 */
import { waitReady } from "../_harness/launcher.ts";
import { assertEquals, assertNotEquals } from "@std/assert";
import { freePort, NATS_SERVER_BIN, probeConnect, waitForPort } from "../_harness/nats_server.ts";
import { REPO_DIR, STORIES260K } from "../_harness/paths.ts";
import { writeAuthDir } from "../../infra/nats/gen_auth.ts";
import { natsAuthFromEnv } from "../../shared/nats/auth.ts";
import { connectNats } from "../../shared/nats/connect.ts";
import { SUBJECTS } from "../../shared/handoff/contract.ts";

const hasOpenssl = (() => {
  try {
    return new Deno.Command("openssl", { args: ["version"], stdout: "null", stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
})();

async function openssl(dir: string, ...args: string[]) {
  const out = await new Deno.Command("openssl", { args, cwd: dir, stdout: "null", stderr: "piped" }).output();
  if (!out.success) throw new Error(`openssl ${args[0]}: ${new TextDecoder().decode(out.stderr)}`);
}

/** A CA, a server certificate for 127.0.0.1 and a client certificate, all from the CA. */
async function makeCerts(dir: string) {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await openssl(
    dir,
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "1",
    "-subj",
    "/CN=kvrelay-test-ca",
  );
  for (
    const [name, ext] of [["server", "subjectAltName=IP:127.0.0.1,DNS:localhost"], [
      "client",
      "extendedKeyUsage=clientAuth",
    ]]
  ) {
    await Deno.writeTextFile(`${dir}/${name}.ext`, ext + "\n");
    await openssl(
      dir,
      "req",
      ...ec,
      "-keyout",
      `${name}-key.pem`,
      "-out",
      `${name}.csr`,
      "-subj",
      `/CN=${name}`,
    );
    await openssl(
      dir,
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${name}.pem`,
      "-days",
      "1",
      "-extfile",
      `${name}.ext`,
    );
  }
}

Deno.test({
  name:
    "gen_auth.ts + multi-host.conf: nkey services over TLS with client certificates; a plain client is refused",
  ignore: !hasOpenssl,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "kvrelay-ext-" });
    let server: Deno.ChildProcess | undefined;
    try {
      await writeAuthDir(dir);
      await makeCerts(dir);
      const conf = (await Deno.readTextFile(`${REPO_DIR}/infra/nats/multi-host.conf`))
        .replace(/^# (tls \{| {2}\S.*|\})$/gm, "$1")
        .replaceAll("/etc/nats/tls/", `${dir}/`)
        .replace("/var/lib/nats", `${dir}/js`);
      await Deno.writeTextFile(`${dir}/multi-host.conf`, conf);
      const port = freePort();
      server = new Deno.Command(NATS_SERVER_BIN, {
        args: ["-c", `${dir}/multi-host.conf`, "-a", "127.0.0.1", "-p", String(port)],
        stdout: "null",
        stderr: "null",
      }).spawn();
      const env = (role: string) => ({
        NATS_NKEY: `${dir}/${role}.nk`,
        NATS_TLS_CA: `${dir}/ca.pem`,
        NATS_TLS_CERT: `${dir}/client.pem`,
        NATS_TLS_KEY: `${dir}/client-key.pem`,
      });
      const url = `tls://127.0.0.1:${port}`;
      await waitForPort(port, 10_000);
      const decode = await connectNats(url, "kvrelay-decode", natsAuthFromEnv(env("decode")));
      const gateway = await connectNats(url, "kvrelay-gateway", natsAuthFromEnv(env("gateway")));
      decode.subscribe(SUBJECTS.decodeOpen, {
        callback: (_e, m) => {
          m.respond("opened");
        },
      });
      await decode.flush();
      const reply = await gateway.request(SUBJECTS.decodeOpen, "open", { timeout: 5000 });
      assertEquals(reply.string(), "opened");
      // TLS is required: a plain client does not even get to present credentials
      assertNotEquals(await probeConnect(port), "PONG");
      await decode.close();
      await gateway.close();

      // npm start against it: each service with its own seed from KVRELAY_NATS_NKEY_DIR, over TLS
      const http = freePort();
      const launcher = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--cached-only", `${REPO_DIR}/infra/launch/start.ts`],
        env: {
          ...env("unused"),
          NATS_NKEY: "",
          NATS_URL: url,
          KVRELAY_NATS_NKEY_DIR: dir,
          KVRELAY_PORT: String(http),
          KVRELAY_MODEL: STORIES260K.model,
          KVRELAY_TOKENIZER: STORIES260K.tokenizer,
        },
        stdout: "null",
        stderr: "null",
      }).spawn();
      try {
        const ready = await waitReady(`http://127.0.0.1:${http}`).catch(() => false);
        assertEquals(ready, true, "the services became ready");
        const r = await fetch(`http://127.0.0.1:${http}/v1/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: "stories260K", prompt: "", max_tokens: 4, temperature: 0 }),
        });
        assertEquals(r.status, 200);
        assertEquals((await r.json()).usage.completion_tokens, 4);
      } finally {
        launcher.kill("SIGTERM");
        assertEquals((await launcher.status).code, 0);
      }
    } finally {
      server?.kill("SIGTERM");
      await server?.status;
      await Deno.remove(dir, { recursive: true });
    }
  },
});
