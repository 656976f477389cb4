/**
 * `deno task bench:model [--device cpu,webgpu] [--threads N] [--quick] [--model PATH]
 *   [--max-batch N] [--context N] [--timeout S] [--label L] [--out PATH]`
 *
 * Model runtime speed per device on the default model (infra/model/kvrelay-tiny unless
 * `--model`): prefill tokens/s at prompt lengths 128, 512, 2048 (capped at the model's
 * context), and decode tokens/s at batch 1, 2, 4, ... up to `--max-batch` (default 64) over
 * a past of `--context` tokens (default 512) per sequence. On WebGPU decode is measured
 * twice: with the past uploaded every step (`Model.decode`, what the CPU does too) and with
 * the KV kept on the GPU between steps (`Model.decodeKeep`, what the decode engine does).
 * A device that does not start is reported, not fatal.
 *
 * Each device runs in its own child process under a deadline (`--timeout`, default 90 s;
 * a WebGPU run that hangs or crashes costs only that device) and streams one JSON line per
 * measurement, so a child that is stopped still leaves its finished rows. Batches grow
 * until a step takes longer than 4 s or fails (out of memory). Prints markdown tables and
 * writes JSON to out/bench/model_device_<label>.json, the label naming the
 * machine (GPU adapter when WebGPU offers a hardware one, else CPU model and cores).
 * @module
 */
import { defaultOut, exitOnHelp } from "./_cli.ts";
import { parseArgs } from "node:util";
import { EMBEDDED_MODEL_DIR } from "../../shared/config/mod.ts";
import { Model, probeAdapter } from "../../shared/model/mod.ts";
import { KvrelayError } from "../../shared/errors.ts";
import { REPO_DIR } from "../_harness/paths.ts";
import { runChild } from "./_child.ts";
import { machineInfo, machineLabel } from "./_machine.ts";

exitOnHelp(import.meta.url);

const args = parseArgs({
  args: Deno.args,
  strict: true,
  options: {
    device: { type: "string", default: "cpu,webgpu" },
    threads: { type: "string" },
    quick: { type: "boolean", default: false },
    model: { type: "string", default: EMBEDDED_MODEL_DIR },
    tokenizer: { type: "string" },
    "max-batch": { type: "string" },
    context: { type: "string" },
    timeout: { type: "string", default: "90" },
    label: { type: "string" },
    out: { type: "string" },
    child: { type: "boolean", default: false },
  },
}).values;

const quick = args.quick!;
const threads = Number(args.threads ?? navigator.hardwareConcurrency);
const maxBatch = Number(args["max-batch"] ?? (quick ? 16 : 64));
const context = Number(args.context ?? (quick ? 256 : 512));
const STEP_LIMIT_MS = 4_000;
const CELL_MS = quick ? 300 : 1_000; // time spent repeating one measurement

interface PrefillRow {
  device: string;
  tokens: number;
  ms: number;
  tokensPerS: number;
}
interface DecodeRow {
  device: string;
  mode: "upload" | "kept";
  batch: number;
  context: number;
  msPerStep: number;
  tokensPerS: number;
}
type Line =
  | { kind: "start"; device: string; adapter?: string; model: string; params: number; loadMs: number }
  | ({ kind: "prefill" } & PrefillRow)
  | ({ kind: "decode" } & DecodeRow)
  | { kind: "note"; device: string; text: string };

// ---------------------------------------------------------------------------------------
// Child: one device, one JSON line per result.

function emit(line: Line): void {
  console.log(
    JSON.stringify(line, (_k, v) => (typeof v === "number" && !Number.isInteger(v) ? +v.toFixed(2) : v)),
  );
}

function seededIds(n: number, vocab: number, seed: number): number[] {
  let s = seed;
  return Array.from({ length: n }, () => 3 + ((s = (s * 1103515245 + 12345) >>> 0) % (vocab - 3)));
}

/** Median ms of `fn` after one warm-up, repeated until `CELL_MS` has passed (at most 20 runs). */
async function time(fn: () => Promise<unknown>, budgetMs = CELL_MS): Promise<number> {
  await fn();
  const ms: number[] = [];
  const t0 = performance.now();
  while (ms.length < 20 && (ms.length < 2 || performance.now() - t0 < budgetMs)) {
    const t = performance.now();
    await fn();
    ms.push(performance.now() - t);
    if (ms.at(-1)! > STEP_LIMIT_MS) break;
  }
  ms.sort((a, b) => a - b);
  return ms[ms.length >> 1];
}

async function child(device: "cpu" | "webgpu"): Promise<void> {
  const t0 = performance.now();
  let model: Model;
  try {
    model = await Model.load({
      modelPath: args.model!,
      tokenizerPath: args.tokenizer,
      device,
      threads,
      sessionTimeoutMs: 60_000,
    });
  } catch (err) {
    if (!(err instanceof KvrelayError) || (err.code !== "unavailable" && err.code !== "timeout")) throw err;
    return emit({ kind: "note", device, text: `not available: ${err.message}` });
  }
  const c = model.config;
  const params = c.vocabSize * c.dim +
    c.nLayers * (c.dim * (c.nHeads + 2 * c.nKvHeads) * c.headDim + c.nHeads * c.headDim * c.dim +
        3 * c.dim * c.hiddenDim);
  emit({
    kind: "start",
    device,
    adapter: model.adapter,
    model: c.name,
    params,
    loadMs: performance.now() - t0,
  });
  try {
    for (const T of (quick ? [128, 512] : [128, 512, 2048]).map((t) => Math.min(t, c.maxSeqLen))) {
      const ids = seededIds(T, c.vocabSize, T);
      const ms = await time(() => model.prefill(ids));
      emit({ kind: "prefill", device, tokens: T, ms, tokensPerS: (T * 1000) / ms });
    }
    // One real past of `context` tokens, tiled over the batch.
    const P = Math.min(context, c.maxSeqLen - 32);
    const pre = await model.prefill(seededIds(P, c.vocabSize, 7));
    const modes: ("upload" | "kept")[] = model.keepsKv ? ["upload", "kept"] : ["upload"];
    for (const mode of modes) {
      for (let B = 1; B <= maxBatch; B *= 2) {
        const past = pre.layers.map((l) => ({ keys: tile(l.keys, B), values: tile(l.values, B) }));
        const pastLengths = pre.layers.map(() => new Int32Array(B * c.nKvHeads).fill(P));
        const tokens = seededIds(B, c.vocabSize, B);
        let ms: number;
        try {
          if (mode === "upload") {
            ms = await time(() =>
              model.decode({ tokens, positions: tokens.map(() => P), past, pastLengths })
            );
          } else {
            // Continue from the kept KV; each timed call is one step (the past grows by one).
            let step = await model.decodeKeep({ tokens, positions: tokens.map(() => P), past, pastLengths });
            let pos = P + 1;
            ms = await time(async () => {
              step = await model.decodeKeep({ tokens, positions: tokens.map(() => pos), kept: step.kept });
              pos = Math.min(pos + 1, c.maxSeqLen - 1);
            });
            step.kept.dispose();
          }
        } catch (err) {
          emit({ kind: "note", device, text: `decode ${mode} batch ${B}: ${(err as Error).message}` });
          break;
        }
        emit({
          kind: "decode",
          device,
          mode,
          batch: B,
          context: P,
          msPerStep: ms,
          tokensPerS: (B * 1000) / ms,
        });
        if (ms > STEP_LIMIT_MS) {
          emit({
            kind: "note",
            device,
            text: `decode ${mode}: stopped at batch ${B} (${ms.toFixed(0)} ms a step)`,
          });
          break;
        }
      }
    }
  } finally {
    await model.close();
  }
}

/** (nKv, P, hd) repeated B times → (B, nKv, P, hd). */
function tile(x: Float32Array, B: number): Float32Array {
  const out = new Float32Array(B * x.length);
  for (let b = 0; b < B; b++) out.set(x, b * x.length);
  return out;
}

// ---------------------------------------------------------------------------------------
// Parent: machine label, one child per device, tables and JSON.

async function runDevice(device: string, timeoutS: number): Promise<{ lines: Line[]; note?: string }> {
  const childArgs = [
    new URL(import.meta.url).pathname,
    "--child",
    "--device",
    device,
    "--threads",
    String(threads),
    "--max-batch",
    String(maxBatch),
    "--context",
    String(context),
    "--model",
    args.model!,
    ...(args.tokenizer ? ["--tokenizer", args.tokenizer] : []),
    ...(quick ? ["--quick"] : []),
  ];
  return await runChild<Line>(childArgs, {
    timeoutS,
    onLine: (line) => console.error(`  ${device}: ${describe(line)}`),
  });
}

function describe(l: Line): string {
  switch (l.kind) {
    case "start":
      return `loaded ${l.model} in ${l.loadMs.toFixed(0)} ms${l.adapter ? ` (adapter ${l.adapter})` : ""}`;
    case "prefill":
      return `prefill ${l.tokens} tokens: ${l.ms.toFixed(1)} ms, ${l.tokensPerS.toFixed(0)} tokens/s`;
    case "decode":
      return `decode ${l.mode} batch ${l.batch}: ${l.msPerStep.toFixed(1)} ms/step, ${
        l.tokensPerS.toFixed(0)
      } tokens/s`;
    case "note":
      return l.text;
  }
}

async function parent(): Promise<void> {
  const devices = args.device!.split(",").map((d) => d.trim()).filter(Boolean);
  for (const d of devices) {
    if (d !== "cpu" && d !== "webgpu") throw new RangeError(`--device ${d}: cpu or webgpu`);
  }
  const adapter = await probeAdapter();
  const label = args.label ?? machineLabel(adapter);
  const machine = { label, ...machineInfo(adapter) };
  const { cpu, cores } = machine;
  console.error(`machine: ${JSON.stringify(machine)}`);
  const results: Record<string, { available: boolean; note?: string; lines: Line[] }> = {};
  const started = performance.now();
  for (const d of devices) {
    console.error(`${d}: running (deadline ${args.timeout} s)`);
    const r = await runDevice(d, Number(args.timeout));
    results[d] = { available: r.lines.some((l) => l.kind === "start"), note: r.note, lines: r.lines };
    if (r.note) console.error(`  ${d}: ${r.note}`);
  }
  const all = Object.values(results).flatMap((r) => r.lines);
  const prefill = all.filter((l): l is { kind: "prefill" } & PrefillRow => l.kind === "prefill");
  const decode = all.filter((l): l is { kind: "decode" } & DecodeRow => l.kind === "decode");
  const start = all.find((l) => l.kind === "start") as Extract<Line, { kind: "start" }> | undefined;

  const cols = Object.keys(results);
  const fmt = (x: number | undefined) => (x === undefined ? "–" : x >= 100 ? x.toFixed(0) : x.toFixed(1));
  const out: string[] = [];
  out.push(`Machine: ${cpu}, ${cores} cores; WebGPU adapter: ${machine.webgpuAdapter ?? "none"}`);
  out.push(
    `Model: ${start?.model ?? args.model} (${
      ((start?.params ?? 0) / 1e6).toFixed(1)
    }M parameters), threads ${threads}`,
  );
  out.push(
    "",
    "Prefill, tokens/s",
    "",
    `| prompt | ${cols.join(" | ")} |`,
    `|---:|${cols.map(() => "---:").join("|")}|`,
  );
  for (const T of [...new Set(prefill.map((p) => p.tokens))]) {
    out.push(
      `| ${T} | ${
        cols.map((d) => fmt(prefill.find((p) => p.device === d && p.tokens === T)?.tokensPerS)).join(" | ")
      } |`,
    );
  }
  const dcols = cols.flatMap((d) => d === "webgpu" ? ["webgpu upload", "webgpu kept"] : [`${d} upload`]);
  const ctx = decode[0]?.context ?? context;
  out.push(
    "",
    `Decode, tokens/s (past of ${ctx} tokens per sequence; upload = past sent every step, kept = KV stays on the device)`,
    "",
  );
  out.push(`| batch | ${dcols.join(" | ")} |`, `|---:|${dcols.map(() => "---:").join("|")}|`);
  for (const B of [...new Set(decode.map((p) => p.batch))].sort((a, b) => a - b)) {
    const cell = (c: string) => {
      const [d, mode] = c.split(" ");
      return fmt(decode.find((p) => p.device === d && p.mode === mode && p.batch === B)?.tokensPerS);
    };
    out.push(`| ${B} | ${dcols.map(cell).join(" | ")} |`);
  }
  for (const [d, r] of Object.entries(results)) {
    if (r.note) out.push("", `${d}: ${r.note}`);
    for (const l of r.lines) if (l.kind === "note") out.push("", `${d}: ${l.text}`);
  }
  console.log(out.join("\n"));

  const path = args.out ?? defaultOut(`model_device_${label}.json`);
  const json = {
    generatedAt: new Date().toISOString(),
    machine,
    model: { path: args.model!.replace(`${REPO_DIR}/`, ""), name: start?.model, params: start?.params },
    settings: { threads, quick, maxBatch, context: ctx, timeoutS: Number(args.timeout) },
    seconds: Math.round((performance.now() - started) / 100) / 10,
    devices: Object.fromEntries(
      Object.entries(results).map(([d, r]) => [d, {
        available: r.available,
        note: r.note,
        adapter: (r.lines.find((l) => l.kind === "start") as Extract<Line, { kind: "start" }> | undefined)
          ?.adapter,
        loadMs: (r.lines.find((l) => l.kind === "start") as Extract<Line, { kind: "start" }> | undefined)
          ?.loadMs,
        prefill: prefill.filter((p) => p.device === d).map(({ kind: _k, device: _d, ...rest }) => rest),
        decode: decode.filter((p) => p.device === d).map(({ kind: _k, device: _d, ...rest }) => rest),
        notes: r.lines.filter((l) => l.kind === "note").map((l) => (l as { text: string }).text),
      }]),
    ),
    table: out.join("\n"),
  };
  await Deno.writeTextFile(path, JSON.stringify(json, null, 2) + "\n");
  console.error(`wrote ${path}`);
}

if (import.meta.main) {
  if (args.child) await child(args.device as "cpu" | "webgpu");
  else await parent();
  Deno.exit(0);
}
