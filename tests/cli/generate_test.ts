import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { REPO_DIR, STORIES260K, STORIES260K_GREEDY } from "../_harness/paths.ts";

async function kvrelay(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--cached-only", `${REPO_DIR}/services/cli/main.ts`, ...args],
    env: { KVRELAY_MODEL: "", KVRELAY_TOKENIZER: "", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

Deno.test("generate --json on stories260K from an empty prompt gives the known-good greedy text", async () => {
  const r = await kvrelay([
    "generate",
    "--model",
    STORIES260K.model,
    "--tokenizer",
    STORIES260K.tokenizer,
    "--prompt",
    "",
    "--max-tokens",
    "64",
    "--temperature",
    "0",
    "--json",
  ]);
  assertEquals(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assertEquals(out.prompt_ids, [1]);
  assert(out.text.startsWith(STORIES260K_GREEDY), out.text);
  assertEquals(out.ids.length, 64);
  assert(!out.ids.includes(1) && !out.ids.includes(2), "ids exclude BOS/EOS");
  assertEquals(typeof out.kv.ratio, "number");
  assertEquals(out.kv.kept_fraction, 1);
});

Deno.test("generate without a model is a clear error, not a crash", async () => {
  const r = await kvrelay(["generate", "--prompt", "hi"], { KVRELAY_MODEL: "/nonexistent/model.bin" });
  assertEquals(r.code, 2);
  assertStringIncludes(r.stderr, "/nonexistent/model.bin");
});

Deno.test("generate with no model argument runs the embedded default model", async () => {
  const r = await kvrelay([
    "generate",
    "--prompt",
    // the training format of the arithmetic task (2 to 4 operations; infra/train/data.py)
    "Question: Tom has 12 apples. He buys 7 more apples. Then he gives 5 apples to Mia. How many apples does Tom have now?\nSolution:",
    "--max-tokens",
    "40",
    "--temperature",
    "0",
    "--json",
  ]);
  assertEquals(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assertEquals(out.prompt_ids[0], 0, "the embedded tokenizer's <bos> is 0");
  assertStringIncludes(out.text, "Answer: 14");
  assertEquals(out.kv.kept_fraction_per_layer.length, 8);
});
