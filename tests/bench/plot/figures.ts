/**
 * The result plots, one figure per table of the benchmarks and evaluations: each reads its JSON
 * from the results directory and returns a Vega-Lite spec with the rows it plots, or why it
 * has nothing to plot. Tables that other runs produce later (`kvsort_eb_sweep.json`) are used
 * when present; until then their figure is drawn from the task evaluations that exist
 * (`task_eval_*.json`) and says so in its subtitle. The rate table (eval:rates) is read from
 * `kv_compress_rate_table.json` or the newest `kv_compress_rate_table_<machine>.json`.
 * @module
 */
import type { RatioVsKRow } from "../kvsort_ratio_vs_k.ts";
import type { TopLevelSpec } from "vega-lite";
import { type Built, checkRows, CONFIG, type Figure, filesMatching, readJson, SCHEMA } from "./common.ts";

import { kvRankCorrelationByLayer } from "./kv_stats_figure.ts";
import { twoGpu } from "./two_gpu_figure.ts";

export { type Built, checkRows, type Figure } from "./common.ts";

/** One accuracy measurement with its 95 % interval. */
export interface AccuracyRow {
  task: string;
  accuracy: number;
  ci95_low: number;
  ci95_high: number;
}

/** The pending tables' files (their rows are already in the plotted shape). */
export const EB_SWEEP_FILE = "kvsort_eb_sweep.json";
export const RATE_TABLE_FILE = "kv_compress_rate_table.json";
/** The three task families of `eval:tasks` (passkey@<len> rows are its length breakdown). */
const TASKS = ["arithmetic", "multikey", "passkey"];

/** A pending table's rows, checked: every row has the named numeric and string fields. */
async function pendingRows<T>(
  dir: string,
  file: string,
  nums: string[],
  strs: string[],
): Promise<T[] | undefined> {
  const d = await readJson(dir, file) as { rows?: unknown } | undefined;
  if (d === undefined) return undefined;
  return checkRows<T>(file, d.rows, { number: nums, string: strs });
}

interface TaskEval {
  file: string;
  kv: {
    codec: string;
    errorBound: number;
    errorMode: string;
    evictionRate: number;
    eviction: string;
    maxPool?: number;
  };
  rows: { task: string; n: number; accuracy: number; ci95: [number, number] }[];
}

/** Every `task_eval*.json` of the results directory. */
async function taskEvals(dir: string): Promise<TaskEval[]> {
  const out: TaskEval[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (!e.isFile || !/^task_eval.*\.json$/.test(e.name)) continue;
    const d = await readJson(dir, e.name) as Omit<TaskEval, "file">;
    if (d?.kv && Array.isArray(d.rows)) out.push({ ...d, file: e.name });
  }
  return out.sort((a, b) => a.file.localeCompare(b.file));
}

const accuracyRows = (t: TaskEval): AccuracyRow[] =>
  t.rows.filter((r) => TASKS.includes(r.task)).map((r) => ({
    task: r.task,
    accuracy: r.accuracy,
    ci95_low: r.ci95[0],
    ci95_high: r.ci95[1],
  }));

/** A facet channel: the field, its header title and the order of its values. */
interface FacetField {
  field: string;
  title: string | null;
  sort?: string[];
}

/** Accuracy with its interval as error bars and a line per `color` field, over `x`. */
function accuracySpec(
  title: string,
  subtitle: string | string[],
  values: object[],
  x: { field: string; title: string; base: number },
  color: { field: string; title: string },
  facet?: { column: FacetField; row?: FacetField },
): TopLevelSpec {
  const layer = {
    layer: [
      {
        mark: { type: "errorbar", ticks: true },
        encoding: {
          x: { field: x.field, type: "quantitative" },
          y: { field: "ci95_low", type: "quantitative", title: "accuracy (95 % CI)" },
          y2: { field: "ci95_high" },
          color: { field: color.field, type: "nominal" },
        },
      },
      {
        mark: { type: "line", point: true },
        encoding: {
          x: {
            field: x.field,
            type: "quantitative",
            title: x.title,
            scale: { type: "log", base: x.base },
            axis: { values: [...new Set(values.map((v) => (v as Record<string, number>)[x.field]))] },
          },
          y: {
            field: "accuracy",
            type: "quantitative",
            title: "accuracy (95 % CI)",
            scale: { domain: [0, 1] },
          },
          color: { field: color.field, type: "nominal", title: color.title },
        },
      },
    ],
  };
  const base = { $schema: SCHEMA, title: { text: title, subtitle }, data: { values }, config: CONFIG };
  return (facet
    ? {
      ...base,
      facet: Object.fromEntries(
        Object.entries(facet).map((
          [k, f],
        ) => [k, { field: f.field, type: "nominal", title: f.title, sort: f.sort }]),
      ),
      spec: { width: facet.row ? 200 : 220, height: facet.row ? 150 : 220, ...layer },
    }
    : { ...base, width: 420, height: 260, ...layer }) as TopLevelSpec;
}

/** Accuracy vs KVSort error bound, no eviction (the KVSort table). */
/** eval:eb-sweep's table from `file` as a figure, or undefined when the file is not there. */
async function ebSweepFigure(title: string, dir: string, file: string, model: string) {
  const sweep = await pendingRows<AccuracyRow & { error_bound: number }>(
    dir,
    file,
    ["error_bound", "accuracy", "ci95_low", "ci95_high"],
    ["task"],
  );
  if (!sweep) return undefined;
  // a log axis has no 0: the fp16 reference (error_bound 0) goes into the subtitle; the
  // passkey@<length> breakdown rows stay in the JSON
  const bounded = sweep.filter((r) => r.error_bound > 0 && !r.task.includes("@"));
  const reference = sweep.filter((r) => r.error_bound === 0 && !r.task.includes("@"))
    .map((r) => `${r.task} ${r.accuracy.toFixed(2)}`).join(", ");
  return {
    spec: accuracySpec(
      title,
      [
        `eval:eb-sweep, ${file}: ${model}, adaptive kvsort, bound relative per frame, no eviction`,
        `answer-only tasks, every bound in separate processes, 95 % Wilson intervals; fp16 hand-off: ${reference}`,
      ],
      bounded,
      { field: "error_bound", title: "error bound (relative)", base: 10 },
      { field: "task", title: "task" },
    ),
    rows: bounded.length,
    sources: [file],
  };
}

export const accuracyVsErrorBound: Figure = {
  name: "accuracy_vs_error_bound",
  title: "Task accuracy vs KVSort error bound",
  async build(dir) {
    const sweep = await ebSweepFigure(this.title, dir, EB_SWEEP_FILE, "kvrelay-tiny");
    if (sweep) return sweep;
    const evals = (await taskEvals(dir)).filter((t) => t.kv.codec === "kvsort" && t.kv.evictionRate === 1);
    if (evals.length === 0) {
      return { skipped: `no ${EB_SWEEP_FILE} and no kvsort task_eval_*.json without eviction` };
    }
    const values = evals.flatMap((t) => accuracyRows(t).map((r) => ({ ...r, error_bound: t.kv.errorBound })));
    const mode = [...new Set(evals.map((t) => t.kv.errorMode))].join("/");
    return {
      spec: accuracySpec(
        this.title,
        `kvrelay-tiny, no eviction; ${evals.length} eval:tasks runs (task_eval*.json)`,
        values,
        { field: "error_bound", title: `error bound (${mode})`, base: 10 },
        { field: "task", title: "task" },
      ),
      rows: values.length,
      sources: evals.map((t) => t.file),
    };
  },
};

/** The second model's tables carry its name: `<table>_kvrelay-small.json`. */
export const SECOND_MODEL = "kvrelay-small";

export const accuracyVsErrorBoundSecond: Figure = {
  name: `accuracy_vs_error_bound_${SECOND_MODEL}`,
  title: `Task accuracy vs KVSort error bound, ${SECOND_MODEL}`,
  async build(dir) {
    const file = `kvsort_eb_sweep_${SECOND_MODEL}.json`;
    return await ebSweepFigure(this.title, dir, file, SECOND_MODEL) ??
      { skipped: `no ${file} (deno task eval:eb-sweep --model infra/model/${SECOND_MODEL})` };
  },
};

/** A row of eval:rates' JSON (the fields plotted). */
export interface RateTableRow extends AccuracyRow {
  table: string;
  rate: number;
  policy: string;
}

/** eval:rates' tables in the order it runs them (the paper's settings first). */
const RATE_TABLES = ["paper", "paper_floor16", "defaults"];

/**
 * The rate table to draw: `kv_compress_rate_table.json` when there, else the newest
 * `kv_compress_rate_table_<machine>.json`, an H200 one before any other machine's.
 */
export async function rateTableFile(dir: string): Promise<string | undefined> {
  const all = (await filesMatching(dir, /^kv_compress_rate_table(_.+)?\.json$/))
    .filter((f) => !f.endsWith(`_${SECOND_MODEL}.json`)); // another model's, drawn on its own
  if (all.includes(RATE_TABLE_FILE)) return RATE_TABLE_FILE;
  return all.find((f) => /h200/i.test(f)) ?? all[0];
}

/**
 * The rate table's rows as drawn: the three task families (passkey@<len> rows are passkey's
 * length breakdown), a panel per task (columns) and per settings table (rows).
 */
export function rateTableSpec(
  title: string,
  subtitle: string | string[],
  rows: RateTableRow[],
): TopLevelSpec {
  const values = rows.filter((r) => TASKS.includes(r.task));
  const tables = [...new Set(values.map((r) => r.table))]
    .sort((a, b) => (RATE_TABLES.indexOf(a) + 1 || 99) - (RATE_TABLES.indexOf(b) + 1 || 99));
  return accuracySpec(
    title,
    subtitle,
    values,
    { field: "rate", title: "compression rate", base: 2 },
    { field: "policy", title: "policy" },
    {
      column: { field: "task", title: null, sort: TASKS.filter((t) => values.some((r) => r.task === t)) },
      row: { field: "table", title: "settings", sort: tables },
    },
  );
}

/** eval:rates' table from `file` as a figure, or undefined when the file is not there. */
async function rateTableFigure(title: string, dir: string, file: string, model: string) {
  const rows = await pendingRows<RateTableRow>(
    dir,
    file,
    ["rate", "accuracy", "ci95_low", "ci95_high"],
    ["table", "task", "policy"],
  );
  if (!rows) return undefined;
  const n = [...new Set(rows.filter((r) => TASKS.includes(r.task)).map((r) => (r as { n?: number }).n))]
    .filter((x) => x !== undefined);
  const spec = rateTableSpec(
    title,
    [
      `eval:rates, ${file}: ${model}, codec raw, decode keeps evicting at the rate`,
      `${
        n.length ? `${n.join("/")} items a task, ` : ""
      }95 % Wilson interval; rate = prompt KVs / kept KVs (1 evicts nothing); equal lines overlap`,
    ],
    rows,
  );
  return { spec, rows: rows.filter((r) => TASKS.includes(r.task)).length, sources: [file] };
}

/** Accuracy vs eviction rate, a panel per task and settings table, a line per policy (eval:rates). */
export const accuracyVsEvictionRate: Figure = {
  name: "accuracy_vs_eviction_rate",
  title: "Task accuracy vs eviction rate",
  async build(dir) {
    const file = await rateTableFile(dir);
    const table = file && await rateTableFigure(this.title, dir, file, "kvrelay-tiny");
    if (table) return table;
    const x = { field: "rate", title: "eviction rate (prompt KVs / kept KVs)", base: 2 };
    const color = { field: "policy", title: "policy" };
    const facet = { column: { field: "task", title: "task" } };
    // the kvsort 1e-2 runs: KV-Compress with SnapKV's max-pool (7) or none; rate 1 evicts nothing
    const evals = (await taskEvals(dir)).filter((t) => t.kv.codec === "kvsort" && t.kv.errorBound === 0.01);
    const policy = (t: TaskEval) => `${t.kv.eviction}, max-pool ${t.kv.maxPool ?? 0}`;
    const policies = [...new Set(evals.filter((t) => t.kv.evictionRate > 1).map(policy))];
    if (policies.length === 0) {
      return { skipped: `no kv_compress_rate_table*.json and no kvsort task_eval_*.json with eviction` };
    }
    const values = evals.flatMap((t) =>
      (t.kv.evictionRate === 1 ? policies : [policy(t)]).flatMap((p) =>
        accuracyRows(t).map((r) => ({ ...r, rate: t.kv.evictionRate, policy: p }))
      )
    );
    return {
      spec: accuracySpec(
        this.title,
        `kvrelay-tiny, KVSort 1e-2 rel; ${evals.length} eval:tasks runs (task_eval_eb1e-2_r*.json); rate 1 evicts nothing`,
        values,
        x,
        color,
        facet,
      ),
      rows: values.length,
      sources: evals.map((t) => t.file),
    };
  },
};

export const accuracyVsEvictionRateSecond: Figure = {
  name: `accuracy_vs_eviction_rate_${SECOND_MODEL}`,
  title: `Task accuracy vs eviction rate, ${SECOND_MODEL}`,
  async build(dir) {
    const file = `kv_compress_rate_table_${SECOND_MODEL}.json`;
    return await rateTableFigure(this.title, dir, file, SECOND_MODEL) ??
      { skipped: `no ${file} (deno task eval:rates --model infra/model/${SECOND_MODEL})` };
  },
};

interface CodecRow {
  set: string;
  codec: string;
  eb: number | null;
  k: string;
  ratioFp16: number;
}

/**
 * KVSort's ratio against k, the rows that share one sort index: from bench:ratio-vs-k on the
 * project's own model KV (both layouts, both bound definitions) when its JSON is there, else
 * from bench:codec's kvsort rows.
 */
export const ratioVsK: Figure = {
  name: "ratio_vs_k",
  title: "KVSort ratio vs index share k",
  async build(dir) {
    const own = await readJson(dir, RATIO_VS_K_FILE) as
      | { rows?: RatioVsKRow[]; dumps?: string[] }
      | undefined;
    if (own?.rows?.length) return ratioVsKOwn(this.title, own.rows);
    const d = await readJson(dir, "codec.json") as { rows?: CodecRow[] } | undefined;
    const values = (d?.rows ?? []).filter((r) => r.codec === "kvsort" && /^\d+$/.test(r.k))
      .map((r) => ({ set: r.set, k: Number(r.k), ratio: r.ratioFp16, error_bound: String(r.eb) }));
    if (values.length === 0) {
      return { skipped: `no ${RATIO_VS_K_FILE} and no kvsort rows with a fixed k in codec.json` };
    }
    return codecJsonPanels(this.title, "ratio against fp16, one line per error bound", values, {
      x: {
        field: "k",
        type: "quantitative",
        title: "k (frames sharing one sort index)",
        scale: { type: "log", base: 2 },
        axis: { values: [1, 2, 4, 8, 16, 32] },
      },
      color: { field: "error_bound", type: "ordinal", title: "error bound", scale: { scheme: "viridis" } },
    });
  },
};

export const RATIO_VS_K_FILE = "kvsort_ratio_vs_k.json";

/**
 * bench:ratio-vs-k drawn: one panel per (layout, bound definition), K and V together, ratio
 * (fp16 basis; fp32 is twice it) against k >= 1 at each bound; k = 0 (no sort) and the adaptive
 * codec as flat references across the k axis. The JSON keeps K and V apart.
 */
function ratioVsKOwn(title: string, rows: RatioVsKRow[]): Built {
  const both = rows.filter((r) => r.role === "both");
  const kMax = Math.max(...both.flatMap((r) => (typeof r.k === "number" ? [r.k] : [])));
  const values = both.flatMap((r) => {
    const at = {
      panel: `${r.layout} rows, bound per ${r.eb_definition}`,
      ratio: r.ratio_fp16,
      bound: `rel ${r.error_bound}`,
    };
    if (typeof r.k === "number" && r.k > 0) return [{ ...at, k: r.k, kind: "shared sort index" }];
    const kind = r.k === 0 ? "no sort (k = 0)" : "adaptive (as sent)";
    return [1, kMax].map((k) => ({ ...at, k, kind }));
  });
  return {
    spec: {
      $schema: SCHEMA,
      title: {
        text: title,
        subtitle:
          `bench:ratio-vs-k, ${RATIO_VS_K_FILE}: kvrelay-tiny's held-out prose KV, K and V together; ratio against fp16 (fp32 basis = 2x)`,
      },
      data: { values },
      config: CONFIG,
      facet: { field: "panel", type: "nominal", title: null },
      columns: 2,
      spec: {
        width: 260,
        height: 200,
        mark: { type: "line", point: true },
        encoding: {
          x: {
            field: "k",
            type: "quantitative",
            title: "k (rows sharing one sort index)",
            scale: { type: "log", base: 2 },
          },
          y: { field: "ratio", type: "quantitative", title: "ratio vs fp16", scale: { type: "log" } },
          color: { field: "bound", type: "nominal", title: "error bound" },
          strokeDash: { field: "kind", type: "nominal", title: null },
          detail: { field: "kind" },
        },
      },
    } as TopLevelSpec,
    rows: rows.length,
    sources: [RATIO_VS_K_FILE],
  };
}

/** A row of bench:handoff's JSON (the fields plotted). */
export interface HandoffRow {
  workload: string;
  tokens: number;
  link_gbps: number | null;
  pipeline?: boolean;
  codec: string;
  eviction_rate: number;
  handoff_ms: number;
  raw_bytes: number;
}

/** The floor of sending the cache as it is: its fp16 bytes on the link, nothing else. */
export const FP16_FLOOR = "fp16 bytes ÷ link (floor)";

/**
 * The points of one hand-off run: a line per codec (and pipelining) and eviction, per workload
 * panel, plus the fp16 floor; unpaced loopback rows have no speed to sit at and are left out.
 */
export function handoffPoints(rows: HandoffRow[], machine: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const floors = new Map<string, Record<string, unknown>>();
  for (const r of rows) {
    if (r.link_gbps === null) continue;
    const panel = `${machine}${machine ? ": " : ""}${r.workload}, ${r.tokens} tokens`;
    const eviction = r.eviction_rate === 1 ? "none" : `rate ${r.eviction_rate}`;
    const codec = r.codec + (r.pipeline === false ? " (not pipelined)" : "");
    out.push({ panel, link_gbps: r.link_gbps, handoff_ms: r.handoff_ms, codec, eviction });
    floors.set(`${panel}|${r.link_gbps}`, {
      panel,
      link_gbps: r.link_gbps,
      handoff_ms: (r.raw_bytes * 8) / (r.link_gbps * 1e9) * 1000,
      codec: FP16_FLOOR,
      eviction: "none",
    });
  }
  return [...out, ...floors.values()];
}

const TABLEAU10 = [
  "#4e79a7",
  "#f28e2b",
  "#e15759",
  "#76b7b2",
  "#59a14f",
  "#edc948",
  "#b07aa1",
  "#ff9da7",
  "#9c755f",
];

/** A colour per codec, grey for the fp16 floor. */
function codecColors(values: Record<string, unknown>[]) {
  const codecs = [...new Set(values.map((v) => v.codec as string))].filter((c) => c !== FP16_FLOOR).sort();
  return { domain: [...codecs, FP16_FLOOR], range: [...codecs.map((_, i) => TABLEAU10[i % 9]), "#9a9a9a"] };
}

/** Hand-off time (log) vs link speed (log), a panel per workload. */
export function handoffSpec(
  values: Record<string, unknown>[],
  title: string,
  subtitle: string,
): TopLevelSpec {
  const links = [...new Set(values.map((v) => v.link_gbps as number))].sort((x, y) => x - y);
  return {
    $schema: SCHEMA,
    title: { text: title, subtitle },
    data: { values },
    config: CONFIG,
    facet: { field: "panel", type: "nominal", title: null },
    columns: 2,
    spec: {
      width: 260,
      height: 220,
      mark: { type: "line", point: true },
      encoding: {
        x: {
          field: "link_gbps",
          type: "quantitative",
          title: "link speed (Gbit/s)",
          scale: { type: "log" },
          axis: { values: links },
        },
        y: { field: "handoff_ms", type: "quantitative", title: "hand-off (ms)", scale: { type: "log" } },
        color: { field: "codec", type: "nominal", title: "codec", scale: codecColors(values) },
        strokeDash: {
          field: "eviction",
          type: "nominal",
          title: "eviction",
          legend: {
            symbolType: "stroke",
            symbolStrokeWidth: 2,
            encode: { symbols: { update: { stroke: { value: "#333" } } } },
          },
        },
      },
    },
    resolve: { scale: { y: "independent" } },
  } as TopLevelSpec;
}

/** The hand-off runs plotted: the H200 host (WebGPU, then CUDA codec) and the 2-core CPU box. */
const HANDOFF_FILES = [
  { file: "handoff_h200-webgpu.json", machine: "H200 host, WebGPU codec" },
  { file: "handoff_h200.json", machine: "H200 host, CUDA codec" },
  { file: "handoff_amd-epyc-2c.json", machine: "2-core EPYC, CPU codec" },
];

/** Hand-off time vs modelled link speed, per codec, with and without eviction (bench:handoff). */
export const handoffVsLink: Figure = {
  name: "handoff_vs_link",
  title: "Hand-off time vs link speed",
  async build(dir) {
    const values: Record<string, unknown>[] = [];
    const sources: string[] = [];
    for (const { file, machine } of HANDOFF_FILES) {
      const d = await readJson(dir, file) as { rows?: HandoffRow[] } | undefined;
      if (!d?.rows) continue;
      sources.push(file);
      values.push(...handoffPoints(d.rows, machine));
    }
    if (values.length === 0) return { skipped: `none of ${HANDOFF_FILES.map((f) => f.file).join(", ")}` };
    return {
      spec: handoffSpec(
        values,
        this.title,
        `bench:handoff, ${sources.join(", ")}; modelled link (unpaced loopback runs left out)`,
      ),
      rows: values.length,
      sources,
    };
  },
};

interface EvictionRow {
  policy: string;
  rate: number;
  agreement: number;
  kl: number;
}

/** Teacher-forced agreement with the full cache vs eviction rate, per policy (eval:eviction). */
export const agreementVsEvictionRate: Figure = {
  name: "agreement_vs_eviction_rate",
  title: "Greedy agreement with the full cache vs eviction rate",
  async build(dir) {
    const d = await readJson(dir, "eviction_eval.json") as
      | { model?: string; promptLen?: number; steps?: number; rows?: EvictionRow[] }
      | undefined;
    if (!d?.rows?.length) return { skipped: "no eviction_eval.json" };
    const values = d.rows.map((r) => ({ policy: r.policy, rate: r.rate, agreement: r.agreement }));
    return {
      spec: {
        $schema: SCHEMA,
        title: {
          text: this.title,
          subtitle:
            `eval:eviction, eviction_eval.json; ${d.model}, ${d.promptLen}-token prompt, ${d.steps} steps`,
        },
        data: { values },
        config: CONFIG,
        width: 360,
        height: 260,
        mark: { type: "line", point: true },
        encoding: {
          x: {
            field: "rate",
            type: "quantitative",
            title: "eviction rate",
            scale: { type: "log", base: 2 },
            axis: { values: [...new Set(values.map((v) => v.rate))] },
          },
          y: { field: "agreement", type: "quantitative", title: "top-1 agreement", scale: { zero: false } },
          color: { field: "policy", type: "nominal", title: "policy" },
        },
      } as TopLevelSpec,
      rows: values.length,
      sources: ["eviction_eval.json"],
    };
  },
};

/** Ratio vs error bound for each codec with a bound (bench:codec). */
export const ratioVsErrorBound: Figure = {
  name: "ratio_vs_error_bound",
  title: "Ratio vs error bound, by codec",
  async build(dir) {
    const d = await readJson(dir, "codec.json") as { rows?: CodecRow[] } | undefined;
    // kvsort at its best fixed k per bound, and the codecs without k
    const rows = (d?.rows ?? []).filter((r) => r.eb !== null && (r.k === "-" || /^\d+$/.test(r.k)));
    const best = new Map<string, { set: string; codec: string; error_bound: number; ratio: number }>();
    for (const r of rows) {
      const key = `${r.set}|${r.codec}|${r.eb}`;
      const cur = best.get(key);
      if (!cur || r.ratioFp16 > cur.ratio) {
        best.set(key, { set: r.set, codec: r.codec, error_bound: r.eb!, ratio: r.ratioFp16 });
      }
    }
    const values = [...best.values()];
    if (values.length === 0) return { skipped: "no rows with an error bound in codec.json" };
    return codecJsonPanels(this.title, "kvsort at its best k; ratio against fp16", values, {
      x: { field: "error_bound", type: "quantitative", title: "error bound", scale: { type: "log" } },
      color: { field: "codec", type: "nominal", title: "codec" },
    });
  },
};

/**
 * bench:codec's rows drawn one panel per KV set, ratio against fp16 on a log axis: the two figures
 * of codec.json differ only in their x axis and colour.
 */
function codecJsonPanels(
  title: string,
  subtitle: string,
  values: Record<string, unknown>[],
  encoding: { x: Record<string, unknown>; color: Record<string, unknown> },
): Built {
  return {
    spec: {
      $schema: SCHEMA,
      title: { text: title, subtitle: `bench:codec, codec.json; ${subtitle}` },
      data: { values },
      config: CONFIG,
      facet: { column: { field: "set", type: "nominal", title: "KV set [positions, head dim]" } },
      spec: {
        width: 220,
        height: 240,
        mark: { type: "line", point: true },
        encoding: {
          x: encoding.x,
          y: { field: "ratio", type: "quantitative", title: "ratio vs fp16", scale: { type: "log" } },
          color: encoding.color,
        },
      },
      resolve: { scale: { y: "independent" } },
    } as TopLevelSpec,
    rows: values.length,
    sources: ["codec.json"],
  };
}

/** A cell of bench:decode-throughput's JSON (the fields plotted). */
export interface DecodeThroughputRow {
  rate: number;
  decodeEviction: boolean;
  sequences: number;
  tokensPerS: number;
}

/** bench:decode-throughput's JSON, the parts plotted. */
export interface DecodeThroughputRun {
  budget?: { fp16MiB?: number };
  promptLen?: number;
  gen?: number;
  rows?: unknown;
}

const WITH_DECODE_EVICTION = "decode-time eviction";
const PREFILL_ONLY = "prefill eviction only";

/**
 * The points of one decode-throughput run, labelled `label`: a line with and one without
 * decode-time eviction for each measure; rate 1 (nothing evicted) starts both lines.
 */
export function decodeThroughputPoints(
  file: string,
  run: DecodeThroughputRun,
  label: string,
): Record<string, unknown>[] {
  const rows = checkRows<DecodeThroughputRow & { kind?: string }>(file, run.rows, {
    number: ["rate", "sequences", "tokensPerS"],
    boolean: ["decodeEviction"],
  }).filter((r) => r.kind === undefined);
  const budget = run.budget?.fp16MiB === undefined ? "" : `, ${run.budget.fp16MiB.toFixed(0)} MiB fp16 KV`;
  const shape = run.promptLen && run.gen ? `, ${run.promptLen} + ${run.gen} tokens` : "";
  const machine = `${label}${budget}${shape}`;
  return rows.flatMap((r) =>
    (r.rate === 1
      ? [WITH_DECODE_EVICTION, PREFILL_ONLY]
      : [r.decodeEviction ? WITH_DECODE_EVICTION : PREFILL_ONLY])
      .map((eviction) => ({
        machine,
        rate: r.rate,
        eviction,
        sequences: r.sequences,
        tokens_per_s: r.tokensPerS,
      }))
  );
}

/** Sequences held (top) and generated tokens/s (bottom) vs rate, a column per run. */
export function decodeThroughputSpec(
  values: Record<string, unknown>[],
  title: string,
  subtitle: string | string[],
): TopLevelSpec {
  const rates = [...new Set(values.map((v) => v.rate as number))].sort((a, b) => a - b);
  const panel = (field: string, axisTitle: string) => ({
    facet: { column: { field: "machine", type: "nominal", title: null } },
    spec: {
      width: 300,
      height: 200,
      mark: { type: "line", point: true },
      encoding: {
        x: {
          field: "rate",
          type: "quantitative",
          title: "compression rate",
          scale: { type: "log", base: 2 },
          axis: { values: rates },
        },
        y: {
          field,
          type: "quantitative",
          title: axisTitle,
          scale: { type: "log", nice: false },
          axis: { values: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000] },
        },
        color: {
          field: "eviction",
          type: "nominal",
          title: "eviction",
          scale: { domain: [WITH_DECODE_EVICTION, PREFILL_ONLY], range: [TABLEAU10[0], TABLEAU10[1]] },
          legend: { symbolType: "stroke", symbolStrokeWidth: 2 },
        },
        strokeDash: {
          field: "eviction",
          type: "nominal",
          scale: { domain: [WITH_DECODE_EVICTION, PREFILL_ONLY], range: [[1, 0], [5, 3]] },
        },
      },
    },
  });
  return {
    $schema: SCHEMA,
    title: { text: title, subtitle },
    data: { values },
    config: CONFIG,
    vconcat: [panel("sequences", "sequences held (log)"), panel("tokens_per_s", "generated tokens/s (log)")],
  } as TopLevelSpec;
}

/** Sequences held and decode tokens/s at a fixed KV budget per rate (bench:decode-throughput). */
export const decodeThroughput: Figure = {
  name: "decode_throughput",
  title: "Decode throughput at a fixed KV budget",
  async build(dir) {
    const files = (await filesMatching(dir, /^decode_throughput_.+\.json$/)).sort();
    if (files.length === 0) return { skipped: "no decode_throughput_*.json" };
    const values: Record<string, unknown>[] = [];
    for (const file of files) {
      const run = await readJson(dir, file) as DecodeThroughputRun;
      values.push(...decodeThroughputPoints(file, run, file.replace(/^decode_throughput_|\.json$/g, "")));
    }
    return {
      spec: decodeThroughputSpec(
        values,
        this.title,
        [
          `bench:decode-throughput, ${files.join(", ")}: kvrelay-tiny, KV-Compress, codec raw`,
          "one batch, as many sequences as the budget admits; rate 1 (nothing evicted) starts both lines",
        ],
      ),
      rows: values.length,
      sources: files,
    };
  },
};

/** Every figure `deno task plots` draws, in the order docs/RESULTS.md shows them. */
export const FIGURES: Figure[] = [
  accuracyVsErrorBound,
  accuracyVsEvictionRate,
  accuracyVsErrorBoundSecond,
  accuracyVsEvictionRateSecond,
  ratioVsK,
  ratioVsErrorBound,
  handoffVsLink,
  agreementVsEvictionRate,
  decodeThroughput,
  kvRankCorrelationByLayer,
  twoGpu,
];
