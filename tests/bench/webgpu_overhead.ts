/**
 * `deno task bench:webgpu-overhead [--quick] [--label L] [--out PATH] [--budget-s S] [--groups a,b]`
 *
 * Where does the fixed 20–45 ms of every WebGPU `session.run` go? (H200: a decode step at
 * batch 1 costs 26–37 ms on WebGPU, 3.4 ms on the CPU.) Times `session.run` (median of up
 * to 30 runs after warm-up) for a matrix of graphs and options, so that one call on the GPU
 * host separates the candidate causes:
 *
 *   add             one Add on [1,64]: the floor of one run with one download
 *   matmul N        a chain of N MatMuls [1,256]x[256,256] (N = 1, 16, 64): cost per dispatch
 *   matmul 64 gpu   the same chain, output left on the GPU: no readback, no wait
 *   fanout K        K outputs of one Add each (K = 1, 8, 32): cost per downloaded output
 *   decode ...      kvrelay-tiny decode step, batch 1, past 512: plain graph, production
 *                   "upload" (present KV on the GPU), nothing downloaded, kept KV fed back
 *                   (production "kept"); production graphs return the host results as one
 *                   packed output (1 download), the "per-output" cells the same graph with
 *                   logits and new K/V as 17 outputs, "only logits" downloading 1 of those
 *   prefill 128     packed (1 download) vs per-output (25) vs only the logits
 *   ..., fused      the same with the fused graphs (`fused: true`: onnxruntime contrib ops,
 *                   about half the kernels), what `Model` builds on WebGPU since; the cells
 *                   without "fused" keep their names (and the standard-op graphs) so that
 *                   they compare with earlier runs: decode plain / upload / kept and prefill
 *                   128 fused; the kept one in every group
 *   fallback        the decode graph with session.disable_cpu_ep_fallback=1 (fails if any
 *                   node is left to the CPU)
 *   profile         onnxruntime's profiler over a few decode runs (standard and fused):
 *                   nodes per provider, Memcpy nodes, kernel time vs run time (default
 *                   group only)
 *
 * The WebGPU context (device, validation mode, buffer caches) is shared by all sessions of a
 * process and configured by the first one, so each option group runs in its own child
 * process: `cpu`, `webgpu-default` (every cell), then a reduced set of cells per EP option:
 * validationMode `disabled` / `wgpuOnly` / `basic` / `full`, buffer cache modes `bucket` /
 * `simple`, and `disabled` + `bucket` together. The first WebGPU group that cannot start
 * skips the others. Each child streams one JSON line per cell under a deadline (a hung child
 * costs only its group; session creation is also raced in process); groups past `--budget-s`
 * (default 95) are skipped. Not measurable through onnxruntime-node 1.30: graph capture
 * (see shared/model/WEBGPU.md). Prints a table and writes out/bench/webgpu_overhead_<label>.json.
 * @module
 */
import { defaultOut, exitOnHelp } from "./_cli.ts";
import { parseArgs } from "node:util";
import * as ort from "onnxruntime-node";
import { EMBEDDED_MODEL_DIR } from "../../shared/config/mod.ts";
import { encodeModel, GraphBuilder } from "../../shared/onnx/mod.ts";
import { buildDecodeGraph, buildPrefillGraph } from "../../shared/model/llama_graph.ts";
import { loadCheckpoint } from "../../shared/model/load.ts";
import { withDeadline } from "../../shared/model/device.ts";
import { probeAdapter } from "../../shared/model/mod.ts";
import { runChild } from "./_child.ts";
import { machineInfo, machineLabel } from "./_machine.ts";

exitOnHelp(import.meta.url);

const args = parseArgs({
  args: Deno.args,
  strict: true,
  options: {
    quick: { type: "boolean", default: false },
    label: { type: "string" },
    out: { type: "string" },
    "budget-s": { type: "string", default: "95" },
    groups: { type: "string" },
    child: { type: "string" },
  },
}).values;
const quick = args.quick!;
const CELL_MS = quick ? 250 : 500; // time spent repeating one cell
const MAX_RUNS = 30;
const CREATE_MS = 20_000;

type EpOptions = Record<string, string | boolean>;
interface Group {
  name: string;
  device: "cpu" | "webgpu";
  ep?: EpOptions;
  full?: boolean; // run every cell (else the reduced set)
  quick?: boolean; // also in --quick
}
// In order of importance: when --budget-s runs short, the last groups are skipped.
const GROUPS: Group[] = [
  { name: "cpu", device: "cpu", full: true, quick: true },
  { name: "webgpu-default", device: "webgpu", full: true, quick: true },
  { name: "validation-disabled", device: "webgpu", ep: { validationMode: "disabled" }, quick: true },
  {
    name: "disabled+bucket",
    device: "webgpu",
    ep: { validationMode: "disabled", storageBufferCacheMode: "bucket", uniformBufferCacheMode: "bucket" },
    quick: true,
  },
  { name: "validation-wgpuOnly", device: "webgpu", ep: { validationMode: "wgpuOnly" } },
  {
    name: "cache-bucket",
    device: "webgpu",
    ep: { storageBufferCacheMode: "bucket", uniformBufferCacheMode: "bucket" },
  },
  {
    name: "cache-simple",
    device: "webgpu",
    ep: { storageBufferCacheMode: "simple", uniformBufferCacheMode: "simple" },
  },
  { name: "validation-basic", device: "webgpu", ep: { validationMode: "basic" } },
  { name: "validation-full", device: "webgpu", ep: { validationMode: "full" } },
];

interface Row {
  kind: "row";
  group: string;
  cell: string;
  ms?: number; // median
  p10?: number;
  p90?: number;
  runs?: number;
  createMs?: number;
  error?: string;
}
interface Info {
  kind: "info";
  group: string;
  cell: string;
  data: unknown;
}
type Line = Row | Info;

// ---------------------------------------------------------------------------------------
// Child: one option group, one JSON line per cell.

function emit(line: Line): void {
  console.log(
    JSON.stringify(line, (_k, v) => (typeof v === "number" && !Number.isInteger(v) ? +v.toFixed(3) : v)),
  );
}

type Locations = Record<string, "cpu" | "gpu-buffer">;
type Feeds = Record<string, ort.Tensor>;

function sessionOptions(g: Group, extra: ort.InferenceSession.SessionOptions = {}) {
  const ep = g.device === "webgpu"
    ? [{ name: "webgpu", ...g.ep } as ort.InferenceSession.ExecutionProviderConfig]
    : [
      "cpu",
    ];
  return {
    executionProviders: ep,
    intraOpNumThreads: g.device === "cpu" ? navigator.hardwareConcurrency : 1,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
    ...extra,
  } as ort.InferenceSession.SessionOptions;
}

function outputNames(gb: GraphBuilder): string[] {
  return gb.toGraph().outputs.map((o) => o.name);
}

/** Every output named: `onGpu(name)` ones stay on the device. */
function locations(names: string[], onGpu: (n: string) => boolean): Locations {
  return Object.fromEntries(names.map((n) => [n, onGpu(n) ? "gpu-buffer" : "cpu"]));
}

function disposeGpu(out: ort.InferenceSession.ReturnType, keep: Set<string> = new Set()): void {
  for (const [n, t] of Object.entries(out)) if (t.location === "gpu-buffer" && !keep.has(n)) t.dispose();
}

async function timeRuns(
  fn: () => Promise<unknown>,
): Promise<{ ms: number; p10: number; p90: number; runs: number }> {
  await fn();
  await fn();
  const ms: number[] = [];
  const t0 = performance.now();
  while (ms.length < MAX_RUNS && (ms.length < 5 || performance.now() - t0 < CELL_MS)) {
    const t = performance.now();
    await fn();
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  const q = (p: number) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))];
  return { ms: q(0.5), p10: q(0.1), p90: q(0.9), runs: ms.length };
}

/** One cell: build a session, time `step(session)`, release. Failures become the row's error. */
async function cell(
  g: Group,
  name: string,
  gb: GraphBuilder | Uint8Array,
  opts: { extra?: ort.InferenceSession.SessionOptions; loc?: Locations },
  step: (s: ort.InferenceSession) => () => Promise<unknown>,
): Promise<void> {
  let s: ort.InferenceSession | undefined;
  const t0 = performance.now();
  try {
    const bytes = gb instanceof Uint8Array ? gb : encodeModel(gb.toModel());
    const o = sessionOptions(g, opts.extra);
    if (opts.loc) o.preferredOutputLocation = opts.loc;
    s = await withDeadline(
      ort.InferenceSession.create(bytes, o),
      CREATE_MS,
      `${name} session`,
      (x) => x.release(),
    );
    const createMs = performance.now() - t0;
    const r = await timeRuns(step(s));
    emit({ kind: "row", group: g.name, cell: name, createMs, ...r });
  } catch (err) {
    const full = (err as Error)?.message ?? String(err);
    const noAdapter = /Failed to get a WebGPU (adapter|device)[^\n]*/.exec(full);
    const msg = (noAdapter ? noAdapter[0] : full.split("\n")[0]).slice(0, 300);
    emit({ kind: "row", group: g.name, cell: name, error: msg });
    if (noAdapter) throw new Unavailable(msg);
  } finally {
    await s?.release();
  }
}

class Unavailable extends Error {}

function f32(n: number, fill = 0): Float32Array {
  return new Float32Array(n).fill(fill);
}

async function child(g: Group): Promise<void> {
  const full = g.full === true;
  const cpuOut = { loc: undefined };

  // (a) one Add.
  {
    const gb = new GraphBuilder("add");
    const x = gb.input("x", "float32", [1, 64]);
    gb.output(gb.node("Add", [x, x]), "float32", [1, 64], "y");
    const feeds = { x: new ort.Tensor("float32", f32(64, 1), [1, 64]) };
    await cell(g, "add [1,64]", gb, cpuOut, (s) => () => s.run(feeds));
  }

  // (b) MatMul chains.
  const chain = (n: number) => {
    const gb = new GraphBuilder(`chain${n}`);
    let x = gb.input("x", "float32", [1, 256]);
    const w = f32(256 * 256, 1 / 256);
    for (let i = 0; i < n; i++) x = gb.node("MatMul", [x, gb.initializer(`w${i}`, "float32", [256, 256], w)]);
    gb.output(x, "float32", [1, 256], "y");
    return gb;
  };
  const xIn = { x: new ort.Tensor("float32", f32(256, 1), [1, 256]) };
  for (const n of full ? [1, 16, 64] : [64]) {
    await cell(g, `matmul ${n}`, chain(n), cpuOut, (s) => () => s.run(xIn));
  }
  await cell(g, "matmul 64, output on gpu", chain(64), { loc: { y: "gpu-buffer" } }, (s) => async () => {
    disposeGpu(await s.run(xIn));
  });

  // (d) K outputs: one download each.
  const fanout = (k: number) => {
    const gb = new GraphBuilder(`fanout${k}`);
    const x = gb.input("x", "float32", [1, 64]);
    for (let i = 0; i < k; i++) gb.output(gb.node("Add", [x, gb.scalar(i)]), "float32", [1, 64], `y${i}`);
    return gb;
  };
  const x64 = { x: new ort.Tensor("float32", f32(64, 1), [1, 64]) };
  for (const k of full ? [1, 8, 32] : [32]) {
    await cell(g, `fanout ${k}`, fanout(k), cpuOut, (s) => () => s.run(x64));
  }
  if (full) {
    const fo = fanout(32);
    await cell(
      g,
      "fanout 32, outputs on gpu",
      fo,
      { loc: locations(outputNames(fo), () => true) },
      (s) => async () => {
        disposeGpu(await s.run(x64));
      },
    );
  }

  // (c) kvrelay-tiny decode, batch 1, past P0.
  const { config: c, weights } = await loadCheckpoint(EMBEDDED_MODEL_DIR);
  const { nKvHeads: H, headDim: hd, nLayers: L } = c;
  const P0 = Math.min(512, c.maxSeqLen - 64);
  // Production graphs pack the host-bound results into one output; `perOutput` ones do not.
  const plain = encodeModel(buildDecodeGraph(c, weights).toModel());
  const withPresentGb = buildDecodeGraph(c, weights, { present: true });
  const withPresent = encodeModel(withPresentGb.toModel());
  const names = outputNames(withPresentGb);
  const splitGb = buildDecodeGraph(c, weights, { present: true, perOutput: true });
  const split = encodeModel(splitGb.toModel());
  const splitNames = outputNames(splitGb);
  // Fused graphs: the same inputs and outputs (names included).
  const plainFused = encodeModel(buildDecodeGraph(c, weights, { fused: true }).toModel());
  const withPresentFused = encodeModel(
    buildDecodeGraph(c, weights, { present: true, fused: true }).toModel(),
  );
  const i64 = (v: number) => new ort.Tensor("int64", BigInt64Array.of(BigInt(v)), [1]);
  const decodeFeeds = (P: number, past?: { k: ort.Tensor; v: ort.Tensor }[]): Feeds => {
    const feeds: Feeds = { input_ids: i64(7), positions: i64(P) };
    for (let l = 0; l < L; l++) {
      feeds[`past_key_${l}`] = past?.[l].k ?? new ort.Tensor("float32", f32(H * P * hd), [1, H, P, hd]);
      feeds[`past_value_${l}`] = past?.[l].v ?? new ort.Tensor("float32", f32(H * P * hd), [1, H, P, hd]);
      feeds[`attn_bias_${l}`] = new ort.Tensor("float32", f32(H * (P + 1)), [1, H, 1, P + 1]);
    }
    return feeds;
  };
  const fixed = decodeFeeds(P0);
  const runFixed = (s: ort.InferenceSession) => async () => disposeGpu(await s.run(fixed));
  const isPresent = (n: string) => n.startsWith("present_");

  if (full) {
    await cell(g, "decode plain (1 packed download)", plain, {}, runFixed);
    const plainSplit = encodeModel(buildDecodeGraph(c, weights, { perOutput: true }).toModel());
    await cell(g, "decode plain, per-output (17 downloads)", plainSplit, {}, runFixed);
    await cell(g, "decode plain, fused", plainFused, {}, runFixed);
  }
  await cell(g, "decode upload (production)", withPresent, { loc: locations(names, isPresent) }, runFixed);
  if (full) {
    await cell(g, "decode upload, fused", withPresentFused, { loc: locations(names, isPresent) }, runFixed);
  }
  if (full) {
    await cell(g, "decode upload, per-output (17 downloads)", split, {
      loc: locations(splitNames, isPresent),
    }, runFixed);
    await cell(g, "decode only logits downloaded", split, {
      loc: locations(splitNames, (n) => n !== "logits"),
    }, runFixed);
  }
  await cell(g, "decode nothing downloaded", withPresent, { loc: locations(names, () => true) }, runFixed);
  // Kept KV (production decode engine): present of one step is the past of the next.
  const kept = (s: ort.InferenceSession) => {
    let P = P0;
    let past: { k: ort.Tensor; v: ort.Tensor }[] | undefined;
    return async () => {
      if (P >= c.maxSeqLen - 2) { // restart from the fixed past
        past?.forEach((p) => (p.k.dispose(), p.v.dispose()));
        past = undefined;
        P = P0;
      }
      const out = await s.run(decodeFeeds(P, past));
      past?.forEach((p) => (p.k.dispose(), p.v.dispose()));
      past = Array.from(
        { length: L },
        (_, l) => ({ k: out[`present_key_${l}`], v: out[`present_value_${l}`] }),
      );
      disposeGpu(out, new Set(names.filter(isPresent)));
      P++;
    };
  };
  await cell(
    g,
    "decode kept (production)",
    withPresent,
    { loc: locations(names, isPresent) },
    kept,
  );
  await cell(g, "decode kept, fused", withPresentFused, { loc: locations(names, isPresent) }, kept);
  if (full) {
    await cell(g, "decode kept, per-output (17 downloads)", split, {
      loc: locations(splitNames, isPresent),
    }, kept);
    await cell(g, "decode kept, only logits downloaded", split, {
      loc: locations(splitNames, (n) => n !== "logits"),
    }, kept);
    await cell(g, "decode plain, cpu fallback disabled", plain, {
      extra: { extra: { session: { disable_cpu_ep_fallback: "1" } } },
    }, runFixed);
    await cell(g, "decode plain, graph opt disabled", plain, {
      extra: { graphOptimizationLevel: "disabled" },
    }, runFixed);
    await cell(
      g,
      "decode plain, graph opt basic",
      plain,
      { extra: { graphOptimizationLevel: "basic" } },
      runFixed,
    );

    // Prefill of 128 tokens.
    const pre = buildPrefillGraph(c, weights, { perOutput: true });
    const T = 128;
    const bias = f32(T * T);
    for (let i = 0; i < T; i++) bias.fill(-1e9, i * T + i + 1, (i + 1) * T);
    const pf: Feeds = {
      input_ids: new ort.Tensor("int64", BigInt64Array.from({ length: T }, (_, i) => BigInt(3 + i)), [T]),
      positions: new ort.Tensor("int64", BigInt64Array.from({ length: T }, (_, i) => BigInt(i)), [T]),
      attn_bias: new ort.Tensor("float32", bias, [T, T]),
      metric_start: new ort.Tensor("int64", BigInt64Array.of(BigInt(T - 32)), [1]),
    };
    const preBytes = encodeModel(pre.toModel());
    const prePacked = encodeModel(buildPrefillGraph(c, weights).toModel());
    await cell(g, "prefill 128 (1 packed download)", prePacked, {}, (s) => () => s.run(pf));
    const preFused = encodeModel(buildPrefillGraph(c, weights, { fused: true }).toModel());
    await cell(g, "prefill 128, fused", preFused, {}, (s) => () => s.run(pf));
    await cell(g, "prefill 128, per-output (25 downloads)", preBytes, {}, (s) => () => s.run(pf));
    await cell(g, "prefill 128, only logits downloaded", preBytes, {
      loc: locations(outputNames(pre), (n) => n !== "logits"),
    }, (s) => async () => disposeGpu(await s.run(pf)));

    await profile(g, plain, fixed, "profile decode plain");
    await profile(g, plainFused, fixed, "profile decode plain, fused");
  }
}

/** onnxruntime's profiler over 5 decode runs, summarised: where the time of a run goes. */
async function profile(g: Group, model: Uint8Array, feeds: Feeds, name: string): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kvrelay-ort-profile-" });
  let s: ort.InferenceSession | undefined;
  try {
    s = await withDeadline(
      ort.InferenceSession.create(
        model,
        sessionOptions(g, { enableProfiling: true, profileFilePrefix: `${dir}/p` }),
      ),
      CREATE_MS,
      "profile session",
      (x) => x.release(),
    );
    for (let i = 0; i < 3; i++) await s.run(feeds); // warm-up, also profiled
    const wall: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      await s.run(feeds);
      wall.push(performance.now() - t);
    }
    await s.endProfiling();
    const file = [...Deno.readDirSync(dir)].find((e) => e.name.endsWith(".json"));
    if (!file) throw new Error("the profiler wrote no file");
    type Ev = { cat: string; name: string; dur: number; args?: Record<string, string> };
    const events = JSON.parse(await Deno.readTextFile(`${dir}/${file.name}`)) as Ev[];
    const runs = events.filter((e) => e.name === "model_run").map((e) => e.dur / 1000);
    const last = runs.slice(-5);
    const nodes = events.filter((e) => e.cat === "Node" && e.name.endsWith("_kernel_time"));
    const perRun = Math.max(1, runs.length);
    const byProvider: Record<string, { nodes: number; msPerRun: number }> = {};
    const byOp: Record<string, { n: number; msPerRun: number; provider: string }> = {};
    for (const e of nodes) {
      const p = e.args?.provider ?? "?";
      const op = e.args?.op_name ?? "?";
      (byProvider[p] ??= { nodes: 0, msPerRun: 0 }).nodes += 1 / perRun;
      byProvider[p].msPerRun += e.dur / 1000 / perRun;
      const k = `${op}@${p.replace("ExecutionProvider", "")}`;
      (byOp[k] ??= { n: 0, msPerRun: 0, provider: p }).n += 1 / perRun;
      byOp[k].msPerRun += e.dur / 1000 / perRun;
    }
    const cpuNodes = [
      ...new Set(
        nodes.filter((e) => e.args?.provider === "CPUExecutionProvider").map((e) =>
          `${e.args?.op_name}:${e.name.replace(/_kernel_time$/, "")}`
        ),
      ),
    ].slice(0, 40);
    const other = events.filter((e) => e.cat !== "Node" && e.cat !== "Session");
    const otherByName: Record<string, number> = {};
    for (const e of other) otherByName[e.name] = (otherByName[e.name] ?? 0) + e.dur / 1000 / perRun;
    emit({
      kind: "info",
      group: g.name,
      cell: name,
      data: {
        wallMs: wall,
        modelRunMs: last,
        byProvider,
        topOps: Object.entries(byOp).sort((a, b) => b[1].msPerRun - a[1].msPerRun).slice(0, 15)
          .map(([k, v]) => ({ op: k, perRun: +v.n.toFixed(1), msPerRun: +v.msPerRun.toFixed(3) })),
        cpuNodes,
        otherEventsMsPerRun: Object.fromEntries(
          Object.entries(otherByName).sort((a, b) => b[1] - a[1]).slice(0, 10),
        ),
        eventCount: events.length,
      },
    });
  } catch (err) {
    emit({
      kind: "row",
      group: g.name,
      cell: name,
      error: (err as Error).message.slice(0, 300),
    });
  } finally {
    await s?.release();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------
// Parent: one child per group, table and JSON.

async function runGroup(g: Group, timeoutS: number): Promise<{ lines: Line[]; note?: string }> {
  const args = [new URL(import.meta.url).pathname, "--child", g.name, ...(quick ? ["--quick"] : [])];
  const { lines, stderr, note } = await runChild<Line>(args, {
    timeoutS,
    onLine: (line) => {
      if (line.kind === "row") {
        console.error(
          `  ${g.name}: ${line.cell}: ${line.error ?? `${line.ms!.toFixed(2)} ms (${line.runs} runs)`}`,
        );
      } else console.error(`  ${g.name}: ${line.cell}: ${JSON.stringify(line.data).slice(0, 400)}`);
    },
  });
  const warnings = stderr.split("\n").filter((l) =>
    /not assigned|placed on|Memcpy|WebGPU device error/i.test(l)
  )
    .slice(0, 8);
  if (warnings.length) lines.push({ kind: "info", group: g.name, cell: "stderr", data: warnings });
  return { lines, note };
}

async function parent(): Promise<void> {
  const started = performance.now();
  const budgetS = Number(args["budget-s"]);
  const wanted = args.groups?.split(",").map((s) => s.trim());
  const groups = GROUPS.filter((g) => wanted ? wanted.includes(g.name) : !quick || g.quick);
  const adapter = await probeAdapter();
  const label = args.label ?? machineLabel(adapter);
  const machine = { label, ...machineInfo(adapter) };
  console.error(`machine: ${JSON.stringify(machine)}`);
  const results: { group: string; ep?: EpOptions; note?: string; lines: Line[] }[] = [];
  let webgpuDown: string | undefined;
  for (const g of groups) {
    const left = budgetS - (performance.now() - started) / 1000;
    if (g.device === "webgpu" && webgpuDown) {
      results.push({
        group: g.name,
        ep: g.ep,
        note: `skipped: webgpu unavailable (${webgpuDown})`,
        lines: [],
      });
      continue;
    }
    if (left < 8) {
      results.push({
        group: g.name,
        ep: g.ep,
        note: `skipped: ${left.toFixed(0)} s left of --budget-s`,
        lines: [],
      });
      continue;
    }
    const timeoutS = Math.min(g.full ? 55 : 18, left - 3); // full: 29 cells and 2 profiles
    console.error(`${g.name}: running (deadline ${timeoutS.toFixed(0)} s)`);
    const r = await runGroup(g, timeoutS);
    results.push({ group: g.name, ep: g.ep, note: r.note, lines: r.lines });
    if (r.note) console.error(`  ${g.name}: ${r.note}`);
    const rows = r.lines.filter((l): l is Row => l.kind === "row");
    if (g.device === "webgpu" && rows.length > 0 && rows.every((l) => l.error)) {
      webgpuDown = rows[0].error!.slice(0, 160);
    }
  }

  // Table: one row per cell, one column per group.
  const cells = [
    ...new Set(results.flatMap((r) => r.lines.filter((l) => l.kind === "row").map((l) => l.cell))),
  ];
  const cols = results.filter((r) => r.lines.some((l) => l.kind === "row" && !l.error)).map((r) => r.group);
  const cellOf = (group: string, name: string) =>
    results.find((r) => r.group === group)?.lines.find((l): l is Row => l.kind === "row" && l.cell === name);
  const fmt = (
    row?: Row,
  ) => (!row ? "–" : row.error ? "err" : row.ms! >= 100 ? row.ms!.toFixed(0) : row.ms!.toFixed(2));
  const out: string[] = [
    `Machine: ${machine.cores} cores; WebGPU adapter: ${machine.webgpuAdapter ?? "none"}`,
    "",
    "session.run median ms",
    "",
    `| cell | ${cols.join(" | ")} |`,
    `|---|${cols.map(() => "---:").join("|")}|`,
    ...cells.map((c) => `| ${c} | ${cols.map((g) => fmt(cellOf(g, c))).join(" | ")} |`),
  ];
  for (const r of results) {
    if (r.note) out.push("", `${r.group}: ${r.note}`);
    for (const l of r.lines) {
      if (l.kind === "row" && l.error) out.push("", `${r.group} / ${l.cell}: ${l.error}`);
      if (l.kind === "info") out.push("", `${r.group} / ${l.cell}: ${JSON.stringify(l.data)}`);
    }
  }
  console.log(out.join("\n"));

  const path = args.out ?? defaultOut(`webgpu_overhead_${label}.json`);
  await Deno.writeTextFile(
    path,
    JSON.stringify(
      {
        generatedAt: new Date().toISOString(),
        machine,
        settings: { quick, cellMs: CELL_MS, maxRuns: MAX_RUNS, budgetS },
        seconds: Math.round((performance.now() - started) / 100) / 10,
        groups: results,
        table: out.join("\n"),
      },
      null,
      2,
    ) + "\n",
  );
  console.error(`wrote ${path} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

if (import.meta.main) {
  if (args.child) {
    const g = GROUPS.find((x) => x.name === args.child);
    if (!g) throw new RangeError(`--child ${args.child}: no such group`);
    try {
      await child(g);
    } catch (err) {
      if (!(err instanceof Unavailable)) throw err;
    }
  } else await parent();
  Deno.exit(0);
}
