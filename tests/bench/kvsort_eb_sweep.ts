/**
 * `deno task eval:eb-sweep [--jobs N] [--out F] [--runs R] [--limit N] [--codec C] [--ebs a,b,..]
 *   [--tasks multikey,passkey] [--threads 1[,2,..]] [--model DIR]`
 *
 * The KVSort seed table the way the poster made it: task accuracy against the error bound over
 * {1e-3, 4e-3, 8e-3, 1e-2, 3e-2, 6.25e-2, 1e-1, 2.5e-1, 5e-1} (relative, per frame), plus the
 * fp16 hand-off as the reference row (`error_bound: 0`). Only tasks scored on the answer are
 * used: multi-key and passkey prompts end in "Answer:", so the completion is the answer and
 * nothing else (arithmetic's completion holds the worked solution, so it is left out).
 *
 * Every (error bound, run) is a separate Deno process (`--jobs` of them at a time), each
 * loading the model itself, so the `--runs` repeats measure the variance between processes
 * rather than assuming there is none. Run r uses `--threads`[r mod len] onnxruntime intra-op
 * threads (default 1 for every run). Each row gives the mean accuracy over runs, a 95% Wilson
 * interval on the items of one run, the mean wire ratio (fp16 basis), each run's result, and
 * how many items came out differently between runs.
 *
 * Writes JSON to `--out` (default out/bench/kvsort_eb_sweep.json; the tracked table is
 * tests/bench/results/kvsort_eb_sweep.json, drawn by `deno task plots` as
 * docs/plots/accuracy_vs_error_bound) and prints a table.
 * @module
 */
import { parseArgs } from "node:util";
import { EMBEDDED_MODEL_DIR, loadConfig } from "../../shared/config/mod.ts";
import { Model } from "../../shared/model/mod.ts";
import { defaultKvSettings, resolveKvSettings } from "../../shared/pipeline/kv_settings.ts";
import { runLocal } from "../../shared/pipeline/local_run.ts";
import { runChild } from "./_child.ts";
import { heldOutItems, parseAnswer, wilson } from "./task_eval.ts";
import { defaultOut, exitOnHelp } from "./_cli.ts";

/** The poster's grid of relative error bounds. */
export const EB_GRID = [1e-3, 4e-3, 8e-3, 1e-2, 3e-2, 6.25e-2, 1e-1, 2.5e-1, 5e-1];

/** One item's outcome, as a child prints it. */
interface ItemLine {
  kind: "item";
  eb: number;
  run: number;
  id: number;
  task: string;
  length?: number;
  ok: boolean;
  ratio: number;
  answer: string;
}

/** A child's closing line. */
interface DoneLine {
  kind: "done";
  eb: number;
  run: number;
  threads: number;
  seconds: number;
  pid: number;
  /** Items not run: the prompt leaves no room for the answer in the model's context. */
  too_long: number;
}

type Line = ItemLine | DoneLine;

exitOnHelp(import.meta.url);

const { values: v } = parseArgs({
  args: Deno.args,
  options: {
    child: { type: "boolean", default: false },
    eb: { type: "string" },
    run: { type: "string", default: "0" },
    jobs: { type: "string", default: "1" },
    runs: { type: "string", default: "3" },
    out: { type: "string", default: defaultOut("kvsort_eb_sweep.json") },
    limit: { type: "string" },
    codec: { type: "string", default: "kvsort" },
    ebs: { type: "string", default: ["0", ...EB_GRID].join(",") },
    tasks: { type: "string", default: "multikey,passkey" },
    threads: { type: "string", default: "1" },
    model: { type: "string", default: EMBEDDED_MODEL_DIR },
    "timeout-s": { type: "string", default: "3600" },
  },
});

const tasks = v.tasks.split(",");
for (const t of tasks) {
  if (t !== "multikey" && t !== "passkey") {
    throw new RangeError(`--tasks: answer-only tasks are multikey, passkey`);
  }
}
const limit = v.limit === undefined ? undefined : Number(v.limit);

if (v.child) await child(Number(v.eb), Number(v.run), Number(v.threads));
else await parent();

/** Runs every item at one error bound and prints one JSON line per item. */
async function child(eb: number, run: number, threads: number): Promise<void> {
  const t0 = performance.now();
  // eb 0 is the reference: the cache sent as fp16
  const kvIn = eb === 0 ? { codec: "fp16" } : { codec: v.codec, error_bound: eb, error_mode: "rel" };
  const kv = resolveKvSettings(defaultKvSettings(loadConfig({}).kv), kvIn);
  const model = await Model.load({ modelPath: v.model, threads });
  const items = (await heldOutItems(limit, model.config.maxSeqLen)).filter((it) => tasks.includes(it.task));
  let tooLong = 0;
  try {
    for (const [id, it] of items.entries()) {
      const ids = model.tokenizer.encode(it.prompt);
      if (ids.length + 8 >= model.config.maxSeqLen) {
        tooLong++;
        continue;
      }
      const r = await runLocal(model, ids, { kv, sampling: { maxTokens: 8, temperature: 0, topP: 1 } });
      const text = r.text.split("\n")[0];
      const line: ItemLine = {
        kind: "item",
        eb,
        run,
        id,
        task: it.task,
        length: it.length,
        ok: parseAnswer(it.prompt, text) === it.answer,
        ratio: r.kv.ratio,
        answer: text,
      };
      console.log(JSON.stringify(line));
    }
  } finally {
    await model.close();
  }
  const done: DoneLine = {
    kind: "done",
    eb,
    run,
    threads,
    seconds: (performance.now() - t0) / 1000,
    pid: Deno.pid,
    too_long: tooLong,
  };
  console.log(JSON.stringify(done));
}

/** Runs the children `--jobs` at a time, then tabulates. */
async function parent(): Promise<void> {
  const ebs = v.ebs.split(",").map(Number);
  for (const eb of ebs) if (!(eb >= 0 && eb <= 1)) throw new RangeError(`--ebs: bad error bound ${eb}`);
  const runs = Number(v.runs), jobs = Number(v.jobs);
  if (!(runs >= 1 && jobs >= 1)) throw new RangeError("--runs and --jobs must be at least 1");
  const threadList = v.threads.split(",").map(Number);
  const units = ebs.flatMap((eb) => Array.from({ length: runs }, (_, run) => ({ eb, run })));
  const lines: Line[] = [];
  const notes: string[] = [];
  const t0 = performance.now();
  let next = 0, finished = 0;
  const worker = async () => {
    while (next < units.length) {
      const { eb, run } = units[next++];
      const args = [
        new URL(import.meta.url).pathname,
        "--child",
        "--eb",
        String(eb),
        "--run",
        String(run),
        "--threads",
        String(threadList[run % threadList.length]),
        "--codec",
        v.codec,
        "--tasks",
        v.tasks,
        "--model",
        v.model,
        ...(limit === undefined ? [] : ["--limit", String(limit)]),
      ];
      const res = await runChild<Line>(args, { timeoutS: Number(v["timeout-s"]) });
      lines.push(...res.lines);
      if (res.note) notes.push(`eb ${eb} run ${run}: ${res.note}`);
      console.error(
        `[${++finished}/${units.length}] eb ${eb} run ${run}: ${res.lines.length - 1} items ` +
          `(${((performance.now() - t0) / 1000).toFixed(0)} s)${res.note ? ` FAILED ${res.note}` : ""}`,
      );
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, units.length) }, worker));
  const rows = tabulate(ebs, runs, lines);
  printTable(rows);
  const tooLong = Math.max(
    0,
    ...lines.filter((l): l is DoneLine => l.kind === "done").map((d) => d.too_long),
  );
  if (tooLong) console.log(`${tooLong} item(s) a run not run: longer than the model's context allows`);
  const out = {
    what: "task accuracy against the relative error bound, answer-only tasks, repeated across processes",
    codec: v.codec,
    reference: "error_bound 0 is the fp16 hand-off",
    runs,
    jobs,
    threads: threadList,
    limit: limit ?? null,
    date: new Date().toISOString(),
    seconds: (performance.now() - t0) / 1000,
    failures: notes,
    items_too_long: tooLong,
    rows,
  };
  await Deno.writeTextFile(v.out, JSON.stringify(out, null, 2) + "\n");
  console.log(`wrote ${v.out} (deno task plots draws it)`);
  if (notes.length) console.error(notes.join("\n"));
}

/** One row of the table: a task (or passkey length) at one error bound, over every run. */
export interface SweepRow {
  error_bound: number;
  task: string;
  accuracy: number;
  n: number;
  ci95_low: number;
  ci95_high: number;
  mean_ratio_fp16: number;
  /** Items whose answer was not the same in every run. */
  items_differing: number;
  process_runs: { run: number; threads: number; pid: number; seconds: number; accuracy: number; n: number }[];
}

function tabulate(ebs: number[], runs: number, lines: Line[]): SweepRow[] {
  const items = lines.filter((l): l is ItemLine => l.kind === "item");
  const dones = lines.filter((l): l is DoneLine => l.kind === "done");
  const rows: SweepRow[] = [];
  for (const eb of ebs) {
    const atEb = items.filter((l) => l.eb === eb);
    const keys = [...new Set(atEb.flatMap((l) => l.length ? [l.task, `passkey@${l.length}`] : [l.task]))];
    for (const task of keys) {
      const of = atEb.filter((l) => l.task === task || `passkey@${l.length}` === task);
      const perRun = Array.from({ length: runs }, (_, run) => of.filter((l) => l.run === run));
      const done = perRun.filter((r) => r.length > 0);
      if (!done.length) continue;
      const accs = done.map((r) => r.filter((l) => l.ok).length / r.length);
      const accuracy = accs.reduce((a, b) => a + b, 0) / accs.length;
      const n = Math.max(...done.map((r) => r.length));
      const [lo, hi] = wilson(Math.round(accuracy * n), n);
      const answers = new Map<number, Set<string>>();
      for (const l of of) answers.set(l.id, (answers.get(l.id) ?? new Set()).add(l.answer));
      rows.push({
        error_bound: eb,
        task,
        accuracy,
        n,
        ci95_low: lo,
        ci95_high: hi,
        mean_ratio_fp16: of.reduce((a, l) => a + l.ratio, 0) / of.length,
        items_differing: [...answers.values()].filter((s) => s.size > 1).length,
        process_runs: perRun.flatMap((r, run) => {
          if (!r.length) return [];
          const d = dones.find((x) => x.eb === eb && x.run === run);
          return [{
            run,
            threads: d?.threads ?? -1,
            pid: d?.pid ?? -1,
            seconds: d?.seconds ?? -1,
            accuracy: r.filter((l) => l.ok).length / r.length,
            n: r.length,
          }];
        }),
      });
    }
  }
  return rows;
}

function printTable(rows: SweepRow[]): void {
  console.log(
    "eb        task            n   accuracy  95% CI          ratio(fp16)  runs            differing",
  );
  for (const r of rows) {
    console.log(
      `${(r.error_bound === 0 ? "fp16" : r.error_bound.toExponential(2)).padEnd(9)} ${r.task.padEnd(14)} ${
        String(r.n).padStart(4)
      }  ${(100 * r.accuracy).toFixed(1).padStart(6)}%  [${(100 * r.ci95_low).toFixed(1)}, ${
        (100 * r.ci95_high).toFixed(1)
      }]`.padEnd(66) +
        `${r.mean_ratio_fp16.toFixed(2).padStart(8)}x   ${
          r.process_runs.map((p) => (100 * p.accuracy).toFixed(1)).join("/").padEnd(16)
        }${r.items_differing}`,
    );
  }
}
