/**
 * The systemd units of infra/systemd pass `systemd-analyze verify` with nothing to say: every key
 * known, every value parsed, every command there. The units name the checkout as /opt/kvrelay;
 * the test points them at this checkout (and Deno at the one running the test) before verifying.
 * Without systemd-analyze (Debian's `systemd` package, installed here when missing and root) the
 * test is skipped and says why.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { ROLES } from "../../shared/nats/permissions.ts";
import { NATS_SERVER_BIN } from "../../tests/_harness/nats_server.ts";

const DIR = new URL(".", import.meta.url).pathname;
const REPO = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
const ANALYZE = "/usr/bin/systemd-analyze";

async function findAnalyze(): Promise<{ path: string } | { why: string }> {
  const there = () => Deno.stat(ANALYZE).then(() => true, () => false);
  if (await there()) return { path: ANALYZE };
  if (Deno.uid() !== 0) return { why: `no ${ANALYZE}, and only root may 'apt-get install systemd'` };
  const out = await new Deno.Command("apt-get", {
    args: ["install", "-y", "-qq", "systemd"],
    env: { DEBIAN_FRONTEND: "noninteractive" },
    stdout: "null",
    stderr: "piped",
  }).output().catch((err) => ({ success: false, stderr: new TextEncoder().encode(String(err)) }));
  if (!out.success) {
    return { why: `'apt-get install systemd' failed: ${new TextDecoder().decode(out.stderr).slice(-300)}` };
  }
  return (await there()) ? { path: ANALYZE } : { why: `'apt-get install systemd' left no ${ANALYZE}` };
}

const analyze = await findAnalyze();
if ("why" in analyze) console.log(`systemd unit test skipped: ${analyze.why}`);

async function units(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const e of Deno.readDir(DIR)) {
    if (e.name.endsWith(".service")) out.set(e.name, await Deno.readTextFile(DIR + e.name));
  }
  return out;
}

/** The units with this checkout's paths, in a temporary directory; `systemd-analyze verify` on them. */
async function verify(files: Map<string, string>): Promise<{ code: number; stderr: string }> {
  const dir = await Deno.makeTempDir({ prefix: "kvrelay-units-" });
  try {
    const paths: string[] = [];
    for (const [name, text] of files) {
      const local = text
        .replaceAll("/opt/kvrelay/.tools/node_modules/.bin/deno", Deno.execPath())
        .replaceAll("/opt/kvrelay", REPO)
        .replaceAll("/usr/sbin/nats-server", NATS_SERVER_BIN);
      await Deno.writeTextFile(`${dir}/${name}`, local);
      paths.push(`${dir}/${name}`);
    }
    const out = await new Deno.Command(ANALYZE, {
      args: ["verify", "--man=no", ...paths],
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    return { code: out.code, stderr: text.trim() };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("infra/systemd has a unit per service role, running its main.ts with that role's NATS seed", async () => {
  const all = await units();
  assert(all.has("kvrelay-nats.service"));
  for (const role of ROLES) {
    const unit = all.get(`kvrelay-${role}.service`);
    assert(unit, `kvrelay-${role}.service`);
    assertStringIncludes(
      unit,
      `ExecStart=/opt/kvrelay/.tools/node_modules/.bin/deno run -A --cached-only /opt/kvrelay/services/${role}/main.ts`,
    );
    assertStringIncludes(unit, `LoadCredential=nkey:/etc/kvrelay/nats/${role}.nk`);
    await Deno.stat(`${REPO}/services/${role}/main.ts`);
  }
});

Deno.test({
  name: "systemd-analyze verify passes every unit of infra/systemd without a word",
  ignore: "why" in analyze,
  fn: async () => {
    assertEquals(await verify(await units()), { code: 0, stderr: "" });
  },
});

Deno.test({
  name: "systemd-analyze verify, as the test runs it, reports a unit with a misspelt key",
  ignore: "why" in analyze,
  fn: async () => {
    const decode = (await units()).get("kvrelay-decode.service")!;
    const r = await verify(
      new Map([["kvrelay-broken.service", decode.replace("KillSignal=", "KilSignal=")]]),
    );
    assertStringIncludes(r.stderr, "Unknown key 'KilSignal' in section [Service]");
  },
});
