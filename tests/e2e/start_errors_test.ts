/**
 * A process that cannot start says why in one line and exits 1: a bad `KVRELAY_*` value, a model
 * path that does not exist (the launcher finds it before it starts anything), NATS out of reach.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { REPO_DIR } from "../_harness/paths.ts";
import { freePort } from "../_harness/nats_server.ts";

async function start(script: string, env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--cached-only", `${REPO_DIR}/${script}`],
    env: { ...env, NATS_URL: env.NATS_URL ?? `nats://127.0.0.1:${freePort()}` },
    stdout: "null",
    stderr: "piped",
  }).output();
  const lines = new TextDecoder().decode(out.stderr).split("\n").filter((l) => l.trim());
  return { code: out.code, lines };
}

Deno.test("services and the launcher refuse bad settings in one line with exit code 1", async () => {
  const cases: [string, Record<string, string>, string][] = [
    ["services/gateway/main.ts", { KVRELAY_PORT: "abc" }, "KVRELAY_PORT"],
    [
      "services/decode/main.ts",
      { KVRELAY_LIVENESS_MS: "10", KVRELAY_HEARTBEAT_MS: "10" },
      "KVRELAY_LIVENESS_MS",
    ],
    ["services/prefill/main.ts", { KVRELAY_MODEL: "/no/such/model" }, "KVRELAY_MODEL=/no/such/model"],
    ["infra/launch/start.ts", { KVRELAY_MODEL: "/no/such/model" }, "KVRELAY_MODEL=/no/such/model"],
    ["infra/launch/start.ts", { KVRELAY_CODEC: "zip" }, "KVRELAY_CODEC"],
    ["services/decode/main.ts", {}, "cannot connect to NATS"],
  ];
  for (const [script, env, says] of cases) {
    const r = await start(script, env);
    assertEquals(r.code, 1, `${script} ${JSON.stringify(env)}: ${r.lines.join(" | ")}`);
    assertEquals(r.lines.length, 1, r.lines.join("\n"));
    assertStringIncludes(r.lines[0], says);
    assert(!/\bat .*\.ts:\d+/.test(r.lines[0]), r.lines[0]);
  }
});

Deno.test("a KVRELAY_* variable that nothing reads is reported at start, not silently ignored", async () => {
  // No NATS: the gateway gets as far as connecting, and says what it read on the way.
  const r = await start("services/gateway/main.ts", { KVRELAY_CODCE: "fast" });
  assertEquals(r.code, 1);
  assertEquals(r.lines.length, 2, r.lines.join("\n"));
  assertStringIncludes(r.lines[0], "KVRELAY_CODCE is not a kvrelay setting");
  assertStringIncludes(r.lines[1], "cannot connect to NATS");
});
