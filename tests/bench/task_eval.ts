/**
 * `deno task eval:tasks [--model DIR] [--error-bound E] [--eviction-rate R] [--max-pool K] [--codec C]
 *   [--limit N] [--out F] [--corpus DIR] [--ppl-chunks N] [--ppl-len T] [--ppl-batch B]`
 *
 * Task accuracy of a model through the real inference path (prefill → evict + encode →
 * decode → generate, `runLocal`), with the KV settings given, the way the seed papers
 * measure accuracy against compression. The held-out sets are the training recipe's own
 * (infra/train/data.py, fixed seeds 9001–9003; arithmetic 300 items, multi-key 200 items
 * of 64 pairs, passkey 50 items at each of 5 lengths up to 2048 tokens with the classic
 * filler, or 6 up to 4096 for a model of 4096 positions, as eval.py --context 4096), produced by its stdlib-only generators, and scored as infra/train/eval.py scores
 * them: the integer after the last "Answer:". Prints accuracy with a 95% Wilson interval
 * per task (and per passkey length) and writes JSON. `--limit 0` runs no task items.
 *
 * Held-out text perplexity (`text_ppl.ts`): `--ppl-chunks` documents (64) of the recipe's
 * held-out text cut to `--ppl-len` tokens (256), scored by teacher-forced batched decode
 * steps, overall and per source, plus each chunk's second half after its first half's KV
 * went through the hand-off with the KV settings given. Needs the corpus in `--corpus`
 * (`bash infra/train/fetch_text.sh` writes .cache/text/corpus); without it, perplexity is
 * reported as skipped. `--ppl-chunks 0` skips it.
 * @module
 */
import { defaultOut, exitOnHelp } from "./_cli.ts";
import { parseArgs } from "node:util";
import { EMBEDDED_MODEL_DIR, loadConfig } from "../../shared/config/mod.ts";
import { Model } from "../../shared/model/mod.ts";
import { defaultKvSettings, resolveKvSettings } from "../../shared/pipeline/kv_settings.ts";
import { runLocal } from "../../shared/pipeline/local_run.ts";
import { REPO_DIR } from "../_harness/paths.ts";
import { corpusMissing, heldOutPerplexity, type Perplexity, type TextPplResult } from "./text_ppl.ts";

if (import.meta.main) exitOnHelp(import.meta.url); // the sweeps import its item generators

export interface Item {
  task: string;
  prompt: string;
  answer: number;
  length?: number;
}

const GEN = `
import json, random, sys
sys.path.insert(0, "${REPO_DIR}/infra/train")
import data
out = []
for p, c, m in data.eval_arith(300):
    out.append({"task": "arithmetic", "prompt": p, "answer": m["answer"]})
for p, c, m in data.eval_multikey(200, 64):
    out.append({"task": "multikey", "prompt": p, "answer": int(c)})
# Passkey: filler sized by characters (about 4 per token here) to land near each length.
for L in (data.PASSKEY_LENGTHS_4K if int(sys.argv[1]) >= 4096 else data.PASSKEY_LENGTHS):
    for i in range(50):
        seed = data.EVAL_SEEDS["passkey"] * 100000 + L * 100 + i
        p, c, m = data.passkey_item(random.Random(seed), [], int(L * 3.2), True, (i + 0.5) / 50)
        out.append({"task": "passkey", "prompt": p, "answer": m["key"], "length": L})
print(json.dumps(out))
`;

/**
 * The recipe's held-out task items, in order; with `limit`, the first `limit` of each task (of
 * each passkey length). Passkey lengths follow the model's context as eval.py's do: up to 2048
 * tokens, or up to 4096 for a model of 4096 positions or more.
 */
export async function heldOutItems(limit: number | undefined, context: number): Promise<Item[]> {
  const gen = await new Deno.Command("python3", {
    args: ["-c", GEN, String(context)],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (gen.code !== 0) throw new Error("python3 could not generate the held-out sets");
  const items: Item[] = JSON.parse(new TextDecoder().decode(gen.stdout));
  if (limit === undefined) return items;
  const seen = new Map<string, number>();
  return items.filter((it) => {
    const k = `${it.task}${it.length ?? ""}`;
    seen.set(k, (seen.get(k) ?? 0) + 1);
    return seen.get(k)! <= limit;
  });
}

export function wilson(k: number, n: number, z = 1.96): [number, number] {
  if (n === 0) return [0, 0];
  const p = k / n, d = 1 + (z * z) / n, c = (p + (z * z) / (2 * n)) / d;
  const h = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / d;
  return [Math.max(0, c - h), Math.min(1, c + h)];
}

export function parseAnswer(prompt: string, completion: string): number | undefined {
  let text = completion;
  if (!prompt.endsWith("Answer:")) {
    const i = completion.lastIndexOf("Answer:");
    if (i < 0) return undefined;
    text = completion.slice(i + "Answer:".length);
  }
  const m = /^\s*(-?\d+)/.exec(text);
  return m ? Number(m[1]) : undefined;
}

if (import.meta.main) {
  const { values: v } = parseArgs({
    args: Deno.args,
    options: {
      model: { type: "string", default: EMBEDDED_MODEL_DIR },
      "error-bound": { type: "string" },
      "eviction-rate": { type: "string" },
      "max-pool": { type: "string" },
      codec: { type: "string" },
      limit: { type: "string" },
      out: { type: "string", default: defaultOut("task_eval.json") },
      corpus: { type: "string", default: `${REPO_DIR}/.cache/text/corpus` },
      "ppl-chunks": { type: "string", default: "64" },
      "ppl-len": { type: "string", default: "256" },
      "ppl-batch": { type: "string", default: "16" },
    },
  });
  const kvIn: Record<string, unknown> = {};
  if (v["error-bound"]) kvIn.error_bound = Number(v["error-bound"]);
  if (v["eviction-rate"]) kvIn.eviction_rate = Number(v["eviction-rate"]);
  if (v.codec) kvIn.codec = v.codec;
  if (v["max-pool"] !== undefined) kvIn.max_pool = Number(v["max-pool"]);
  const kv = resolveKvSettings(defaultKvSettings(loadConfig({}).kv), kvIn);
  const model = await Model.load({ modelPath: v.model });
  const items = await heldOutItems(v.limit ? Number(v.limit) : undefined, model.config.maxSeqLen);
  const t0 = performance.now();
  const tally = new Map<string, { ok: number; n: number }>();
  const add = (k: string, ok: boolean) => {
    const t = tally.get(k) ?? { ok: 0, n: 0 };
    t.ok += ok ? 1 : 0;
    t.n++;
    tally.set(k, t);
  };
  let ratio = 0, kept = 0, runs = 0;
  const tooLong: string[] = []; // items whose prompt leaves no room for the answer in the context
  for (const it of items) {
    const ids = model.tokenizer.encode(it.prompt);
    const maxTokens = it.task === "arithmetic" ? 128 : 8; // digits are single tokens: 4-step solutions run long
    if (ids.length + maxTokens >= model.config.maxSeqLen) {
      tooLong.push(`${it.task}${it.length ? `@${it.length}` : ""}: ${ids.length} tokens`);
      continue;
    }
    const r = await runLocal(model, ids, { kv, sampling: { maxTokens, temperature: 0, topP: 1 } });
    const text = r.text.split("\nQuestion:")[0];
    const ok = parseAnswer(it.prompt, text) === it.answer;
    add(it.task, ok);
    if (it.length) add(`passkey@${it.length}`, ok);
    ratio += r.kv.ratio;
    kept += r.kv.kept_fraction;
    runs++;
  }
  const taskSeconds = (performance.now() - t0) / 1000;
  const pplChunks = Number(v["ppl-chunks"]);
  let text: TextPplResult | { skipped: string };
  const missing = pplChunks > 0 ? await corpusMissing(v.corpus) : "--ppl-chunks 0";
  if (missing) {
    text = { skipped: missing };
  } else {
    const t1 = performance.now();
    text = await heldOutPerplexity(model, kv, {
      corpus: v.corpus,
      chunks: pplChunks,
      len: Number(v["ppl-len"]),
      batch: Number(v["ppl-batch"]),
    });
    console.log(`held-out text perplexity: ${((performance.now() - t1) / 1000).toFixed(0)} s`);
  }
  await model.close();
  const rows = [...tally.entries()].map(([task, t]) => {
    const [lo, hi] = wilson(t.ok, t.n);
    return { task, n: t.n, accuracy: t.ok / t.n, ci95: [lo, hi] };
  });
  console.log(
    `model ${model.config.name}; codec ${kv.codec} eb ${kv.errorBound} (${kv.errorMode}); eviction rate ${kv.evictionRate}; ` +
      `mean KV ratio ${(ratio / runs).toFixed(2)}x, kept ${(kept / runs).toFixed(3)}; ${runs} items in ${
        taskSeconds.toFixed(0)
      } s`,
  );
  if (tooLong.length) {
    console.log(`${tooLong.length} item(s) not run, longer than the context allows: ${tooLong.join("; ")}`);
  }
  console.log("task            n    accuracy  95% CI");
  for (const r of rows) {
    console.log(
      `${r.task.padEnd(14)} ${String(r.n).padStart(4)}  ${(100 * r.accuracy).toFixed(1).padStart(6)}%   [${
        (100 * r.ci95[0]).toFixed(1)
      }, ${(100 * r.ci95[1]).toFixed(1)}]`,
    );
  }
  printPerplexity(text);
  await Deno.writeTextFile(
    v.out,
    JSON.stringify(
      {
        model: model.config.name,
        kv,
        meanRatio: runs ? ratio / runs : null,
        meanKept: runs ? kept / runs : null,
        rows,
        tooLong,
        text,
      },
      null,
      2,
    ),
  );
  console.log(`wrote ${v.out}`);
}

function printPerplexity(text: TextPplResult | { skipped: string }): void {
  if ("skipped" in text) {
    console.log(`held-out text perplexity: skipped (${text.skipped})`);
    return;
  }
  const line = (name: string, p: Perplexity) =>
    console.log(
      `${name.padEnd(26)} ${String(p.tokens).padStart(7)}  ${p.nll.toFixed(4).padStart(8)}  ${
        p.ppl.toFixed(1).padStart(10)
      }`,
    );
  console.log(`held-out text, ${text.chunks} chunks of up to ${text.len} tokens (${text.corpus})`);
  console.log("text                        tokens   nll/tok  perplexity");
  line("all", text.all);
  for (const [s, p] of Object.entries(text.all.bySource)) line(`  ${s}`, p);
  const h = text.secondHalf;
  line("second half, uncompressed", h.uncompressed);
  line("second half, KV handed off", h.compressed);
  console.log(
    `  (first half's KV: mean ratio ${h.meanRatio.toFixed(2)}x, kept ${h.meanKept.toFixed(3)}; ` +
      `nll change ${(h.compressed.nll - h.uncompressed.nll).toFixed(4)} nats/token)`,
  );
}
