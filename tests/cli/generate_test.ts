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

Deno.test("generate takes the API's sampling flags: --ignore-eos outlasts the story's end, penalties change it, bad values are refused", async () => {
  const base = [
    "generate",
    "--model",
    STORIES260K.model,
    "--tokenizer",
    STORIES260K.tokenizer,
    "--prompt",
    "",
  ];
  const run = async (extra: string[]) => {
    const r = await kvrelay([...base, "--json", ...extra]); // temperature 0 unless extra says otherwise
    assertEquals(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as { ids: number[]; text: string; finish_reason: string };
  };
  // Sampled with seed 2, the story from BOS ends (EOS) before 400 tokens; --ignore-eos runs on, and
  // --min-tokens holds EOS back that long.
  const seeded = ["--temperature", "1", "--seed", "2"];
  const ended = await run([...seeded, "--max-tokens", "400"]);
  assertEquals(ended.finish_reason, "stop");
  const n = ended.ids.length;
  const long = await run([...seeded, "--max-tokens", String(n + 20), "--ignore-eos"]);
  assertEquals([long.ids.length, long.finish_reason], [n + 20, "length"]);
  const min = await run([...seeded, "--max-tokens", "400", "--min-tokens", String(n + 10)]);
  assert(min.ids.length >= n + 10, `${min.ids.length} tokens`);
  const plain = await run(["--max-tokens", "64"]);
  const penalised = await run([
    "--max-tokens",
    "64",
    "--frequency-penalty",
    "1.5",
    "--repetition-penalty",
    "1.3",
  ]);
  assert(penalised.text !== plain.text.slice(0, penalised.text.length), penalised.text);
  const bad = await kvrelay([...base, "--presence-penalty", "3"]);
  assertEquals(bad.code, 2);
  assertStringIncludes(bad.stderr, "presence_penalty");
});
