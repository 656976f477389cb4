/**
 * `deno task bench:two-gpu`: prefill on one GPU and decode on another, the deployment kvrelay
 * serves, against both on one GPU, for `fp16` and the compressed hand-off, over a modelled link.
 *
 * Layouts, each a system of its own (nats-server, prefill with its compression, decode, gateway):
 * - `split`: prefill on GPU A (KVRELAY_GPU=A), decode on GPU B;
 * - `shared`: both on GPU A.
 * With `--gpus none` nothing is pinned (one layout, `unpinned`: a machine without a GPU, or one
 * GPU for both); with one GPU listed, `shared` only.
 *
 * For each layout and configuration (codec × eviction rate), on the same prompt:
 * - sequential: `--reps` streaming requests one after another, after one warm-up: TTFT, the
 *   hand-off (`usage.kv.ms.handoff`), prefill, decode tokens/s of the request
 *   ((tokens − 1) / (last token − first token)), ratio (fp16 basis) and wire bytes;
 * - concurrent: `--concurrent` streaming requests at once: TTFT p50/p95 and generated tokens/s
 *   over the batch (on one GPU, new prompts' prefill competes with the others' decode).
 * Every request generates exactly `--max-tokens` tokens (`ignore_eos`) at temperature 0, and the
 * text of each configuration is compared across layouts (the same greedy tokens on either GPU).
 *
 * Placement: per-GPU memory before the services start and while they run, and the processes on
 * each GPU with the services' pids (nvidia-smi; null without one).
 *
 * Prints a table and writes JSON with a `summary` (`--out`, default out/bench/two_gpu_<label>.json);
 * `deno task plots` draws it. On the two-GPU host (carry .gpu):
 *
 *   source infra/gpu/unpack.sh && deno task bench:two-gpu --gpus 0,1 --device webgpu \
 *     --label h200x2 --out $OUT/two_gpu_h200x2.json
 *
 *   deno task bench:two-gpu [--gpus 0,1|0|none] [--layouts split,shared] [--device auto]
 *     [--codec-device auto] [--codecs fp16,fast] [--evict 1,8] [--link 10|none] [--prompt-tokens 2048]
 *     [--max-tokens 64] [--reps 3] [--concurrent 4] [--label NAME] [--out PATH]
 * @module
 */
import { parseArgs } from "node:util";
import { dirname } from "node:path";
import { defaultOut, exitOnHelp } from "./_cli.ts";
import { startNatsServer } from "../_harness/nats_server.ts";
import { type ServiceName, startServices } from "../_harness/services.ts";
import { loadConfig } from "../../shared/config/mod.ts";
import type { KvrelayError } from "../../shared/errors.ts";
import { CODEC_TRAITS, isCodecName } from "../../shared/codec/mod.ts";
import type { CodecChoice } from "../../shared/config/mod.ts";
import { benchPromptIds } from "./_bench_prompt.ts";
import { machineInfo, machineLabel } from "./_machine.ts";
import { type CompletionResult, timeCompletion } from "./_completion_client.ts";
import { type GpuMemory, gpuMemory, type GpuProcess, gpuProcesses } from "./_gpus.ts";
import { twoGpuSpec } from "./plot/two_gpu_figure.ts";

exitOnHelp(import.meta.url);

const { values: a } = parseArgs({
  args: Deno.args,
  strict: true,
  options: {
    gpus: { type: "string", default: "0,1" },
    // default: split and shared with two GPUs, shared with one (none: unpinned)
    layouts: { type: "string" },
    device: { type: "string", default: "auto" },
    "codec-device": { type: "string", default: "auto" },
    codecs: { type: "string", default: "fp16,fast" },
    evict: { type: "string", default: "1,8" },
    link: { type: "string", default: "10" },
    "prompt-tokens": { type: "string", default: "2048" },
    "max-tokens": { type: "string", default: "64" },
    reps: { type: "string", default: "3" },
    concurrent: { type: "string", default: "4" },
    "error-bound": { type: "string", default: "0.01" },
    label: { type: "string" },
    out: { type: "string" },
  },
});
const list = (s: string) => s.split(",").map((x) => x.trim()).filter(Boolean);
const fail = (flag: string, v: unknown): never => {
  console.error(`bench:two-gpu: bad --${flag}: ${JSON.stringify(v)}`);
  Deno.exit(2);
};
const isCount = (n: number, min: number) => Number.isInteger(n) && n >= min;

const GPUS = a.gpus === "none" ? [] : list(a.gpus!).map(Number);
if (GPUS.some((g) => !isCount(g, 0)) || GPUS.length > 2 || new Set(GPUS).size !== GPUS.length) {
  fail("gpus", a.gpus);
}
type Layout = "split" | "shared" | "unpinned";
const LAYOUTS: Layout[] = GPUS.length === 0
  ? ["unpinned"]
  : (list(a.layouts ?? (GPUS.length === 2 ? "split,shared" : "shared")) as Layout[]);
const badLayouts = GPUS.length === 0
  ? a.layouts !== undefined // nothing is pinned: the one layout is "unpinned"
  : LAYOUTS.length === 0 || new Set(LAYOUTS).size !== LAYOUTS.length ||
    LAYOUTS.some((l) => !["split", "shared"].includes(l) || (l === "split" && GPUS.length < 2));
if (badLayouts) {
  fail("layouts (split and shared, split with two --gpus, none without --gpus)", a.layouts);
}
// the services' own check of the device settings, before any starts
try {
  loadConfig({ KVRELAY_DEVICE: a.device, KVRELAY_CODEC_DEVICE: a["codec-device"] });
} catch (err) {
  fail((err as KvrelayError).param === "KVRELAY_DEVICE" ? "device" : "codec-device", (err as Error).message);
}
const CODECS = list(a.codecs!);
if (CODECS.some((c) => !isCodecName(c))) fail("codecs", CODECS);
if (a.out !== undefined && !a.out.endsWith(".json")) {
  fail("out (a .json path; the plot goes beside it)", a.out);
}
const EVICT = list(a.evict!).map(Number);
if (EVICT.some((e) => !(e >= 1))) fail("evict", EVICT);
const LINK = a.link === "none" ? undefined : Number(a.link);
if (LINK !== undefined && !(LINK > 0)) fail("link", a.link);
const PROMPT_TOKENS = Number(a["prompt-tokens"]);
const MAX_TOKENS = Number(a["max-tokens"]);
const REPS = Number(a.reps);
const CONCURRENT = Number(a.concurrent);
const EB = Number(a["error-bound"]);
for (
  const [flag, n, min] of [
    ["prompt-tokens", PROMPT_TOKENS, 1],
    ["max-tokens", MAX_TOKENS, 2],
    ["reps", REPS, 1],
    ["concurrent", CONCURRENT, 0],
  ] as const
) if (!isCount(n, min)) fail(flag, n);
if (!(EB > 0)) fail("error-bound", EB);

interface Config {
  codec: CodecChoice;
  evictionRate: number;
}
const CONFIGS: Config[] = CODECS.flatMap((codec) =>
  EVICT.map((evictionRate) => ({ codec: codec as CodecChoice, evictionRate }))
);
const configName = (c: Config) => c.evictionRate > 1 ? `${c.codec} + evict ${c.evictionRate}` : c.codec;

/** Which GPU each service of a layout is pinned to (none: not pinned). */
function pins(layout: Layout): Partial<Record<ServiceName, Record<string, string>>> {
  if (layout === "unpinned") return {};
  const [a0, a1] = GPUS;
  return {
    prefill: { KVRELAY_GPU: String(a0) },
    decode: { KVRELAY_GPU: String(layout === "split" ? a1 : a0) },
  };
}

interface Row {
  layout: Layout;
  config: string;
  codec: CodecChoice;
  eviction_rate: number;
  phase: "sequential" | "concurrent";
  requests: number;
  errors: number;
  ttft_ms: number | null;
  ttft_p95_ms: number | null;
  handoff_ms: number | null;
  prefill_ms: number | null;
  /** Sequential: median of each request's own rate; concurrent: all generated tokens / wall time. */
  decode_tok_s: number | null;
  ratio: number | null;
  wire_mb: number | null;
  /** The first request's text equals the first layout's for this configuration. */
  same_text_as_first_layout: boolean | null;
}

interface Placement {
  before: GpuMemory[] | null;
  running: GpuMemory[] | null;
  processes: (GpuProcess & { service?: ServiceName })[] | null;
  pids: Partial<Record<ServiceName, number>>;
}

/** The q-quantile, interpolated between the two nearest values. */
const quantile = (xs: number[], q: number): number | null => {
  if (!xs.length) return null;
  const s = [...xs].sort((x, y) => x - y);
  const at = q * (s.length - 1), lo = Math.floor(at);
  return s[lo] + (s[Math.min(lo + 1, s.length - 1)] - s[lo]) * (at - lo);
};
const r1 = (x: number | null) => x === null ? null : Math.round(x * 10) / 10;
const r3 = (x: number | null) => x === null ? null : Math.round(x * 1000) / 1000;

async function promptIds(): Promise<number[]> {
  try {
    return (await benchPromptIds([PROMPT_TOKENS], MAX_TOKENS)).get(PROMPT_TOKENS)!;
  } catch (err) {
    return fail("max-tokens (no room left for a prompt)", (err as Error).message);
  }
}

function body(ids: number[], model: string, c: Config): Record<string, unknown> {
  return {
    model,
    prompt: ids,
    max_tokens: MAX_TOKENS,
    temperature: 0,
    ignore_eos: true,
    stream: true,
    stream_options: { include_usage: true },
    kv_compression: {
      codec: c.codec,
      eviction_rate: c.evictionRate,
      ...(CODEC_TRAITS[c.codec].bounded ? { error_bound: EB, error_mode: "rel" } : {}),
    },
  };
}

/** A request's own decode rate: tokens after the first over the time they took. */
function decodeRate(r: CompletionResult): number | null {
  const n = r.usage?.completion_tokens;
  if (!n || n < 2 || r.ttftMs === undefined || r.lastTokenMs === undefined) return null;
  const s = (r.lastTokenMs - r.ttftMs) / 1000;
  return s > 0 ? (n - 1) / s : null;
}

function row(layout: Layout, c: Config, phase: Row["phase"], rs: CompletionResult[], wallMs: number): Row {
  const ok = rs.filter((r) => !r.error && r.usage);
  const med = (f: (r: CompletionResult) => number | null | undefined) =>
    quantile(ok.map(f).filter((x): x is number => typeof x === "number"), 0.5);
  const tokens = ok.reduce((n, r) => n + (r.usage?.completion_tokens ?? 0), 0);
  return {
    layout,
    config: configName(c),
    codec: c.codec,
    eviction_rate: c.evictionRate,
    phase,
    requests: rs.length,
    errors: rs.length - ok.length,
    ttft_ms: r1(med((r) => r.ttftMs)),
    ttft_p95_ms: r1(quantile(ok.map((r) => r.ttftMs!).filter((x) => x !== undefined), 0.95)),
    handoff_ms: r1(med((r) => r.usage!.kv.ms.handoff)),
    prefill_ms: r1(med((r) => r.usage!.kv.ms.prefill)),
    decode_tok_s: r1(phase === "sequential" ? med(decodeRate) : ok.length ? tokens / (wallMs / 1000) : null),
    ratio: r3(med((r) => r.usage!.kv.ratio)),
    wire_mb: r3(med((r) => r.usage!.kv.wire_bytes / 1e6)),
    same_text_as_first_layout: null,
  };
}

async function runLayout(
  layout: Layout,
  ids: number[],
  texts: Map<string, string | undefined>,
  rows: Row[],
): Promise<Placement> {
  const nats = await startNatsServer({ jetstream: false });
  const before = await gpuMemory();
  const env: Record<string, string> = {
    KVRELAY_DEVICE: a.device!,
    KVRELAY_CODEC_DEVICE: a["codec-device"]!,
    ...(LINK ? { KVRELAY_LINK_GBPS: String(LINK) } : {}),
  };
  const svc = await startServices(nats, env, pins(layout));
  try {
    const model = (await (await fetch(`${svc.baseUrl}/v1/models`)).json()).data[0].id as string;
    // the first requests of a system also load kernels and fill caches: not the first config's cost
    for (let i = 0; i < 2; i++) await timeCompletion(svc.baseUrl, body(ids, model, CONFIGS[0]), 120_000);
    for (const c of CONFIGS) {
      const seq: CompletionResult[] = [];
      for (let rep = -1; rep < REPS; rep++) {
        const r = await timeCompletion(svc.baseUrl, body(ids, model, c), 120_000);
        if (rep >= 0) seq.push(r);
      }
      const s = row(layout, c, "sequential", seq, 0);
      const text = seq.find((r) => !r.error)?.text;
      if (texts.has(s.config)) {
        s.same_text_as_first_layout = text !== undefined && text === texts.get(s.config);
      } else texts.set(s.config, text);
      rows.push(s);
      console.error(progress(s));
      if (CONCURRENT > 0) {
        const t0 = performance.now();
        const conc = await Promise.all(
          Array.from(
            { length: CONCURRENT },
            () => timeCompletion(svc.baseUrl, body(ids, model, c), 300_000),
          ),
        );
        const r = row(layout, c, "concurrent", conc, performance.now() - t0);
        rows.push(r);
        console.error(progress(r));
      }
    }
    const pids = svc.pids();
    const byPid = new Map(Object.entries(pids).map(([n, p]) => [p, n as ServiceName]));
    const processes = (await gpuProcesses())?.map((p) => ({ ...p, service: byPid.get(p.pid) })) ?? null;
    return { before, running: await gpuMemory(), processes, pids };
  } finally {
    await svc.stop();
    await nats.stop();
  }
}

function progress(r: Row): string {
  return `${r.layout} ${r.config} ${r.phase}: TTFT ${r.ttft_ms} ms, hand-off ${r.handoff_ms} ms, ` +
    `${r.decode_tok_s} tok/s${r.errors ? `, ${r.errors} errors` : ""}`;
}

function table(rows: Row[]): string {
  const head =
    "| layout | config | phase | ratio (fp16) | wire MB | TTFT ms (p50 / p95) | hand-off ms | prefill ms | " +
    "decode tok/s | same text | errors |";
  const lines = rows.map((r) =>
    `| ${r.layout} | ${r.config} | ${r.phase} | ${r.ratio ?? "–"} | ${r.wire_mb ?? "–"} | ${
      r.ttft_ms ?? "–"
    } / ${r.ttft_p95_ms ?? "–"} | ${r.handoff_ms ?? "–"} | ${r.prefill_ms ?? "–"} | ${
      r.decode_tok_s ?? "–"
    } | ${
      r.same_text_as_first_layout === null ? "–" : r.same_text_as_first_layout ? "yes" : "NO"
    } | ${r.errors} |`
  );
  return [head, `|${"---|".repeat(11)}`, ...lines].join("\n");
}

/** The comparisons the closing note needs: split against shared, and each codec against fp16. */
function summary(rows: Row[]) {
  const find = (layout: Layout, config: string, phase: Row["phase"]) =>
    rows.find((r) => r.layout === layout && r.config === config && r.phase === phase);
  const div = (x: number | null | undefined, y: number | null | undefined) =>
    x && y ? Math.round((x / y) * 1000) / 1000 : null;
  const out: Record<string, unknown> = {};
  for (const config of new Set(rows.map((r) => r.config))) {
    const split = find("split", config, "sequential"), shared = find("shared", config, "sequential");
    const splitC = find("split", config, "concurrent"), sharedC = find("shared", config, "concurrent");
    out[config] = {
      ttft_shared_over_split: div(shared?.ttft_ms, split?.ttft_ms),
      decode_split_over_shared: div(split?.decode_tok_s, shared?.decode_tok_s),
      concurrent_ttft_shared_over_split: div(sharedC?.ttft_ms, splitC?.ttft_ms),
      concurrent_tok_s_split_over_shared: div(splitC?.decode_tok_s, sharedC?.decode_tok_s),
    };
  }
  for (const layout of LAYOUTS) {
    for (const config of new Set(rows.map((r) => r.config))) {
      if (config === "fp16") continue;
      const base = find(layout, "fp16", "sequential"), r = find(layout, config, "sequential");
      out[`${layout}: ${config} vs fp16`] = {
        handoff_fp16_over_codec: div(base?.handoff_ms, r?.handoff_ms),
        ttft_fp16_over_codec: div(base?.ttft_ms, r?.ttft_ms),
      };
    }
  }
  return out;
}

if (import.meta.main) {
  const label = a.label ?? `${machineLabel()}-${GPUS.length ? GPUS.join("-") : "unpinned"}`;
  const out = a.out ?? defaultOut(`two_gpu_${label}.json`);
  const ids = await promptIds();
  console.error(
    `bench:two-gpu: ${LAYOUTS.join(", ")} on GPUs ${GPUS.join(",") || "(none pinned)"}, ` +
      `prompt ${ids.length} tokens + ${MAX_TOKENS}, link ${LINK ?? "unmodelled"} Gbit/s`,
  );
  const rows: Row[] = [];
  const placement: Partial<Record<Layout, Placement>> = {};
  const texts = new Map<string, string | undefined>();
  for (const layout of LAYOUTS) placement[layout] = await runLayout(layout, ids, texts, rows);
  console.log(table(rows));
  const result = {
    bench: "two-gpu",
    label,
    machine: machineInfo(),
    date: new Date().toISOString(),
    settings: {
      gpus: GPUS,
      layouts: LAYOUTS,
      device: a.device,
      codec_device: a["codec-device"],
      link_gbps: LINK ?? null,
      prompt_tokens: ids.length,
      max_tokens: MAX_TOKENS,
      reps: REPS,
      concurrent: CONCURRENT,
      error_bound: EB,
    },
    placement,
    rows,
    summary: summary(rows),
  };
  console.log(`summary: ${JSON.stringify(result.summary)}`);
  await Deno.mkdir(dirname(out), { recursive: true });
  await Deno.writeTextFile(out, JSON.stringify(result, null, 2) + "\n");
  // the renderer loads here, not at start: a GPU host's pack leaves the plotting packages out
  const svg = out.replace(/\.json$/, ".svg");
  try {
    const { renderSvg } = await import("./plot/render.ts");
    await Deno.writeTextFile(svg, await renderSvg(twoGpuSpec(rows, label)));
    console.log(`wrote ${out} and ${svg}`);
  } catch (err) {
    console.log(`wrote ${out}; no plot here (${(err as Error).message}): deno task plots draws it`);
  }
}
