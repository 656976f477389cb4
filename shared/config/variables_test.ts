import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { unknownVariables, VARIABLES, variablesMarkdown } from "./mod.ts";

const ROOT = new URL("../../", import.meta.url);
/** Names that look like variables and are not: the batch lines' JetStream stream. */
const NOT_VARIABLES = new Set(["KVRELAY_BATCH_LINES"]);

function* sources(dir: URL): Generator<URL> {
  for (const e of Deno.readDirSync(dir)) {
    if (e.name === "node_modules" || e.name.startsWith(".") || e.name.endsWith("_test.ts")) continue;
    const u = new URL(e.name + (e.isDirectory ? "/" : ""), dir);
    if (e.isDirectory) yield* sources(u);
    else if (/\.(ts|sh)$/.test(e.name)) yield u;
  }
}

// Tests may name made-up variables on purpose; the code and the harness may not.
Deno.test("VARIABLES lists every KVRELAY_* name the code reads, once", () => {
  const named = new Set(VARIABLES.map((v) => v.name));
  assertEquals(named.size, VARIABLES.length);
  const missing = new Set<string>();
  for (const top of ["services/", "shared/", "infra/", "tests/"]) {
    for (const file of sources(new URL(top, ROOT))) {
      for (const m of Deno.readTextFileSync(file).matchAll(/KVRELAY_[A-Z0-9_]*[A-Z0-9]/g)) {
        if (!named.has(m[0]) && !NOT_VARIABLES.has(m[0])) missing.add(`${m[0]} (${file.pathname})`);
      }
    }
  }
  assertEquals([...missing], []);
});

Deno.test("the README's configuration table is variablesMarkdown()", () => {
  const readme = Deno.readTextFileSync(new URL("README.md", ROOT));
  assertStringIncludes(readme, variablesMarkdown());
});

Deno.test("unknownVariables() names KVRELAY_* settings no row knows, and nothing else", () => {
  assertEquals(
    unknownVariables({ KVRELAY_CODCE: "fast", KVRELAY_CODEC: "fast", PATH: "/bin", NATS_URL: "x" }),
    ["KVRELAY_CODCE"],
  );
  assert(VARIABLES.every((v) => v.meaning.length > 5));
});
