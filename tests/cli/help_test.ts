/**
 * `--help` prints usage and exits 0 on every kvrelay subcommand (through `npm run kvrelay`, as
 * a newcomer runs it, and through `deno task kvrelay`) and on every bench and eval task.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { REPO_DIR } from "../_harness/paths.ts";
import { COMMANDS } from "../../services/cli/main.ts";

async function run(cmd: string, args: string[]) {
  const out = await new Deno.Command(cmd, { args, cwd: REPO_DIR, stdout: "piped", stderr: "piped" }).output();
  return { code: out.code, stdout: new TextDecoder().decode(out.stdout) };
}

const denoTask = (args: string[]) => run(Deno.execPath(), ["task", "-q", ...args]);

Deno.test("kvrelay <command> --help prints the command's usage and exits 0, for every command", async () => {
  for (const name of Object.keys(COMMANDS)) {
    const r = await denoTask(["kvrelay", name, "--help"]);
    assertEquals(r.code, 0, name);
    assertStringIncludes(r.stdout.toLowerCase(), "usage", name);
  }
  const start = await denoTask(["start", "--help"]);
  assertEquals(start.code, 0);
  assertStringIncludes(start.stdout, "npm start");
  const top = await denoTask(["kvrelay", "--help"]);
  assertEquals(top.code, 0);
  for (const name of Object.keys(COMMANDS)) assertStringIncludes(top.stdout, name);
});

Deno.test("npm run kvrelay -- <command> and npm run task -- <task> work without touching PATH", async () => {
  const pkg = JSON.parse(await Deno.readTextFile(`${REPO_DIR}/package.json`));
  assertEquals(pkg.scripts.kvrelay, "bash infra/bootstrap.sh kvrelay");
  const r = await run("npm", ["run", "-s", "kvrelay", "--", "generate", "--help"]);
  assertEquals(r.code, 0);
  assertStringIncludes(r.stdout, "--max-cache-tokens");
  assertStringIncludes(r.stdout, "--ignore-eos");
  // and the bench/eval tasks through `npm run task`
  assertEquals(pkg.scripts.task, "bash infra/bootstrap.sh");
  const bench = await run("npm", ["run", "-s", "task", "--", "bench:codec", "--help"]);
  assertEquals(bench.code, 0);
  assertStringIncludes(bench.stdout, "--out");
});

Deno.test("every bench and eval task prints its usage on --help and exits 0", async () => {
  const tasks = Object.keys(JSON.parse(await Deno.readTextFile(`${REPO_DIR}/deno.json`)).tasks)
    .filter((t) => t.startsWith("bench:") || t.startsWith("eval:"));
  assert(tasks.length >= 10);
  for (const t of tasks) {
    const r = await denoTask([t, "--help"]);
    assertEquals(r.code, 0, t);
    assert(r.stdout.trim().length > 40, `${t} printed: ${r.stdout}`);
  }
});
