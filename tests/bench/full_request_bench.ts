/**
 * `deno task bench:e2e [--configs cpu:cpu,webgpu:webgpu] [--label L] [--sequential 8] [--concurrent 8]
 *   [--stream 1] [--prompt-tokens 1000] [--max-tokens 64] [--kv JSON] [--budget-s 60]
 *   [--ready-timeout-s 45] [--log PATH] [--out PATH]`
 *
 * Whole requests through every service. For each configuration `MODEL_DEVICE:CODEC_DEVICE`
 * (KVRELAY_DEVICE, KVRELAY_CODEC_DEVICE) it starts the system with infra/launch/start.ts — its own
 * nats-server and gateway on free ports — waits for /readyz, then sends /v1/completions with a
 * prompt of about `--prompt-tokens` tokens and `max_tokens` at temperature 0: `--sequential` one after
 * another, `--concurrent` at once, and `--stream` streaming ones timed to their first token. Reports
 * requests/s, latency (mean, p50, p95), generated tokens/s, time to first token, KV bytes raw and on
 * the wire with their ratio, and the server's stage times from `usage.kv.ms` (compression = evict +
 * encode). Prints a markdown table and writes JSON to out/bench/full_request_<label>.json.
 *
 * Built to run unattended: each configuration has a time budget (`--budget-s`, start-up included;
 * requests not started in time are skipped and counted), every request has a deadline, a
 * configuration that does not become ready is reported with the tail of its log, and the JSON is
 * rewritten after each configuration (and on SIGTERM), so a stopped run still leaves what it measured.
 * @module
 */
import { defaultOut, exitOnHelp } from "./_cli.ts";
import { parseArgs } from "node:util";
import { type CompletionResult, type CompletionUsage, timeCompletion } from "./_completion_client.ts";
import { REPO_DIR } from "../_harness/paths.ts";
import { freePort } from "../_harness/nats_server.ts";
import { machineInfo, machineLabel } from "./_machine.ts";

exitOnHelp(import.meta.url);

const args = parseArgs({
  args: Deno.args,
  strict: true,
  options: {
    configs: { type: "string", default: "cpu:cpu" },
    label: { type: "string" },
    sequential: { type: "string", default: "8" },
    concurrent: { type: "string", default: "8" },
    stream: { type: "string", default: "1" },
    "prompt-tokens": { type: "string", default: "1000" },
    "max-tokens": { type: "string", default: "64" },
    kv: { type: "string" },
    "budget-s": { type: "string", default: "60" },
    "ready-timeout-s": { type: "string", default: "45" },
    log: { type: "string" },
    out: { type: "string" },
  },
}).values;

const settings = {
  sequential: Number(args.sequential),
  concurrent: Number(args.concurrent),
  stream: Number(args.stream),
  promptTokens: Number(args["prompt-tokens"]),
  maxTokens: Number(args["max-tokens"]),
  kv: args.kv ? JSON.parse(args.kv) as Record<string, unknown> : undefined,
  budgetS: Number(args["budget-s"]),
  readyTimeoutS: Number(args["ready-timeout-s"]),
};
const DEVICES = ["cpu", "webgpu", "auto"];
const configs = args.configs!.split(",").map((c) => c.trim()).filter(Boolean).map((c) => {
  const [model, codec = model] = c.split(":");
  if (!DEVICES.includes(model) || !DEVICES.includes(codec)) {
    throw new RangeError(`--configs ${c}: MODEL:CODEC, each cpu, webgpu or auto`);
  }
  return { model, codec };
});

// ---------------------------------------------------------------------------------------
// The system under test: infra/launch/start.ts with its own nats-server, output to a log.

interface System {
  baseUrl: string;
  alive(): boolean;
  /** Lines where the services say what they run on. */
  deviceLines: string[];
  /** Distinct error lines (a service that exits, a device that does not start). */
  problems: string[];
  logTail(n: number): string[];
  stop(): Promise<void>;
}

const logFile = args.log ? await Deno.open(args.log, { create: true, append: true }) : undefined;
const enc = new TextEncoder();

function startSystem(model: string, codec: string): System {
  const port = freePort();
  const env = Deno.env.toObject();
  delete env.NATS_URL; // always our own nats-server
  const proc = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--cached-only", `${REPO_DIR}/infra/launch/start.ts`],
    cwd: REPO_DIR,
    clearEnv: true,
    env: {
      ...env,
      KVRELAY_HOST: "127.0.0.1",
      KVRELAY_PORT: String(port),
      KVRELAY_NATS_PORT: String(freePort()),
      KVRELAY_DEVICE: model,
      KVRELAY_CODEC_DEVICE: codec,
      NO_COLOR: "1",
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let exited = false;
  proc.status.then(() => (exited = true));
  const tail: string[] = [];
  const deviceLines: string[] = [];
  const problems: string[] = [];
  const pump = async (stream: ReadableStream<Uint8Array<ArrayBuffer>>) => {
    let buf = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        await logFile?.write(enc.encode(`[${model}:${codec}] ${line}\n`));
        tail.push(line);
        if (tail.length > 200) tail.shift();
        if (/\] (model .* on |KVSort codec backend|WebGPU encode failed)/.test(line)) deviceLines.push(line);
        const problem = /(Error|error):|unavailable|exited/.test(line) && !/XDG_RUNTIME_DIR/.test(line);
        if (problem && problems.length < 8 && !problems.includes(line.trim())) problems.push(line.trim());
      }
    }
  };
  const pumped = Promise.all([pump(proc.stdout), pump(proc.stderr)]).catch(() => {});
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    alive: () => !exited,
    deviceLines,
    problems,
    logTail: (n) => tail.filter((l) => !/XDG_RUNTIME_DIR/.test(l)).slice(-n),
    stop: async () => {
      if (!exited) {
        try {
          proc.kill("SIGTERM"); // start.ts stops every service and its nats-server
        } catch { /* gone */ }
        const t = setTimeout(() => {
          try {
            proc.kill("SIGKILL");
          } catch { /* gone */ }
        }, 20_000);
        await proc.status;
        clearTimeout(t);
      }
      await pumped;
    },
  };
}

async function waitReady(sys: System, deadline: number): Promise<boolean> {
  while (Date.now() < deadline && sys.alive()) {
    try {
      const r = await fetch(`${sys.baseUrl}/readyz`, { signal: AbortSignal.timeout(2_000) });
      await r.body?.cancel();
      if (r.ok) return true;
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

// ---------------------------------------------------------------------------------------
// Requests.

type Usage = CompletionUsage;
type Result = CompletionResult;

/** One request, with at most 30 s of the configuration's time left. */
function complete(baseUrl: string, body: Record<string, unknown>, deadline: number): Promise<Result> {
  return timeCompletion(baseUrl, body, Math.min(30_000, deadline - Date.now()));
}

const PASSAGE =
  "The river ran past the old mill, where a girl named Mia kept a small boat. Every morning she " +
  "rowed to the island to count the birds, and every evening she wrote the numbers in a blue book. " +
  "One day the wind was strong and the water was high, so she stayed home and read about rivers, " +
  "mills and birds instead. ";

/** A prompt of about `tokens` tokens: PASSAGE repeated, measured with one request's prompt_tokens. */
async function calibrate(baseUrl: string, modelId: string, deadline: number): Promise<string> {
  const r = await complete(baseUrl, { model: modelId, prompt: PASSAGE.repeat(4), max_tokens: 4 }, deadline);
  if (!r.usage) throw new Error(`calibration request failed: ${r.error}`);
  const perPassage = r.usage.prompt_tokens / 4;
  return PASSAGE.repeat(Math.max(1, Math.round(settings.promptTokens / perPassage)));
}

// ---------------------------------------------------------------------------------------
// Statistics.

const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
function pct(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

interface Phase {
  requests: number;
  ok: number;
  skipped: number;
  wallS: number;
  requestsPerS: number;
  latencyMs: { mean: number; p50: number; p95: number };
  ttftMs: number | null;
  promptTokens: number;
  completionTokens: number;
  generatedTokensPerS: number;
  kv: {
    rawBytes: number;
    wireBytes: number;
    ratio: number;
    keptFraction: number;
    ms: Record<string, number>;
    compressMs: number;
  } | null;
  errors: string[];
}

function summarize(results: Result[], wallMs: number, skipped: number): Phase {
  const ok = results.filter((r) => r.usage && !r.error);
  const usages = ok.map((r) => r.usage!);
  const lat = ok.map((r) => r.ms);
  const kvs = usages.map((u) => u.kv).filter(Boolean);
  const msKeys = ["prefill", "evict", "encode", "transfer", "decode_kv", "generate"] as const;
  const completion = usages.reduce((a, u) => a + u.completion_tokens, 0);
  const raw = kvs.reduce((a, k) => a + k.raw_bytes, 0);
  const wire = kvs.reduce((a, k) => a + k.wire_bytes, 0);
  const ttfts = ok.map((r) => r.ttftMs).filter((x): x is number => x !== undefined);
  return {
    requests: results.length,
    ok: ok.length,
    skipped,
    wallS: round(wallMs / 1000, 2),
    requestsPerS: round(ok.length / (wallMs / 1000), 2),
    latencyMs: { mean: round(mean(lat)), p50: round(pct(lat, 50)), p95: round(pct(lat, 95)) },
    ttftMs: ttfts.length ? round(mean(ttfts)) : null,
    promptTokens: round(mean(usages.map((u) => u.prompt_tokens))),
    completionTokens: completion,
    generatedTokensPerS: round(completion / (wallMs / 1000)),
    kv: kvs.length
      ? {
        rawBytes: Math.round(raw / kvs.length),
        wireBytes: Math.round(wire / kvs.length),
        ratio: round(raw / Math.max(1, wire), 2),
        keptFraction: round(mean(kvs.map((k) => k.kept_fraction)), 3),
        ms: Object.fromEntries(msKeys.map((k) => [k, round(mean(kvs.map((x) => x.ms[k])), 2)])),
        compressMs: round(mean(kvs.map((x) => x.ms.evict + x.ms.encode)), 2),
      }
      : null,
    errors: [...new Set(results.filter((r) => r.error).map((r) => r.error!))].slice(0, 5),
  };
}

// ---------------------------------------------------------------------------------------
// One configuration.

interface ConfigResult {
  modelDevice: string;
  codecDevice: string;
  ready: boolean;
  readyS: number | null;
  devices: string[];
  note?: string;
  problems?: string[];
  logTail?: string[];
  phases: Record<string, Phase>;
}

async function runConfig(model: string, codec: string): Promise<ConfigResult> {
  const started = Date.now();
  const deadline = started + settings.budgetS * 1000;
  const res: ConfigResult = {
    modelDevice: model,
    codecDevice: codec,
    ready: false,
    readyS: null,
    devices: [],
    phases: {},
  };
  console.error(`${model}:${codec}: starting the system (budget ${settings.budgetS} s)`);
  const sys = startSystem(model, codec);
  current = sys;
  try {
    res.ready = await waitReady(sys, Math.min(deadline, started + settings.readyTimeoutS * 1000));
    res.devices = sys.deviceLines;
    if (!res.ready) {
      res.note = sys.alive() ? `not ready after ${settings.readyTimeoutS} s` : "the launcher exited";
      res.problems = sys.problems;
      res.logTail = sys.logTail(6);
      return res;
    }
    res.readyS = round((Date.now() - started) / 1000, 1);
    console.error(`${model}:${codec}: ready in ${res.readyS} s`);
    const models = await (await fetch(`${sys.baseUrl}/v1/models`)).json();
    const modelId = models.data[0].id as string;
    const prompt = await calibrate(sys.baseUrl, modelId, deadline);
    let n = 0;
    const body = (stream = false) => ({
      model: modelId,
      prompt: `Note ${++n}. ${prompt}`, // distinct prompts
      max_tokens: settings.maxTokens,
      temperature: 0,
      ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
      ...(settings.kv ? { kv_compression: settings.kv } : {}),
    });
    // Sequential.
    let t0 = performance.now();
    const seq: Result[] = [];
    for (let i = 0; i < settings.sequential && Date.now() < deadline; i++) {
      seq.push(await complete(sys.baseUrl, body(), deadline));
    }
    res.phases.sequential = summarize(seq, performance.now() - t0, settings.sequential - seq.length);
    // Concurrent.
    if (Date.now() < deadline && settings.concurrent > 0) {
      t0 = performance.now();
      const con = await Promise.all(
        Array.from({ length: settings.concurrent }, () => complete(sys.baseUrl, body(), deadline)),
      );
      res.phases.concurrent = summarize(con, performance.now() - t0, 0);
    } else if (settings.concurrent > 0) {
      res.phases.concurrent = summarize([], 1, settings.concurrent);
    }
    // Streaming, timed to the first token.
    t0 = performance.now();
    const str: Result[] = [];
    for (let i = 0; i < settings.stream && Date.now() < deadline; i++) {
      str.push(await complete(sys.baseUrl, body(true), deadline));
    }
    if (settings.stream > 0) {
      res.phases.stream = summarize(str, performance.now() - t0, settings.stream - str.length);
    }
    if (Date.now() >= deadline) res.note = `the ${settings.budgetS} s budget ran out`;
    for (const [name, p] of Object.entries(res.phases)) {
      console.error(
        `${model}:${codec}: ${name}: ${p.ok}/${p.requests} ok, ${p.requestsPerS} req/s, mean ${p.latencyMs.mean} ms` +
          (p.errors.length ? `; errors: ${p.errors.join(" | ")}` : ""),
      );
    }
  } catch (err) {
    res.note = `${(err as Error)?.message ?? err}`;
    res.problems = sys.problems;
    res.logTail = sys.logTail(6);
  } finally {
    await sys.stop();
    current = undefined;
    res.devices = sys.deviceLines;
    if (sys.problems.length) res.problems = sys.problems;
  }
  return res;
}

// ---------------------------------------------------------------------------------------
// Table and JSON.

function table(results: ConfigResult[]): string {
  const f = (x: number | null | undefined, d = 1) =>
    x === null || x === undefined || Number.isNaN(x) ? "–" : x.toFixed(d);
  const kib = (b: number | undefined) => (b === undefined ? "–" : (b / 1024).toFixed(0));
  const out = [
    `Full requests through all services: prompt ~${settings.promptTokens} tokens, max_tokens ${settings.maxTokens}, ` +
    `temperature 0${
      settings.kv ? `, kv_compression ${JSON.stringify(settings.kv)}` : ", server's default KV settings"
    }`,
    "",
    "| model | codec | phase | ok | req/s | mean ms | p50 ms | p95 ms | TTFT ms | gen tok/s | prompt tok | KV raw KiB | KV wire KiB | ratio | compress ms | prefill ms |",
    "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const r of results) {
    if (!r.ready || !Object.keys(r.phases).length) {
      out.push(`| ${r.modelDevice} | ${r.codecDevice} | ${r.note ?? "no result"} |${" – |".repeat(13)}`);
      continue;
    }
    for (const [name, p] of Object.entries(r.phases)) {
      out.push(
        `| ${r.modelDevice} | ${r.codecDevice} | ${name} | ${p.ok}/${p.requests + p.skipped} | ${
          f(p.requestsPerS, 2)
        } | ${f(p.latencyMs.mean, 0)} | ${f(p.latencyMs.p50, 0)} | ${f(p.latencyMs.p95, 0)} | ${
          f(p.ttftMs, 0)
        } | ${f(p.generatedTokensPerS)} | ${f(p.promptTokens, 0)} | ${kib(p.kv?.rawBytes)} | ${
          kib(p.kv?.wireBytes)
        } | ${f(p.kv?.ratio, 2)} | ${f(p.kv?.compressMs, 1)} | ${f(p.kv?.ms.prefill, 1)} |`,
      );
    }
  }
  for (const r of results) {
    out.push(
      "",
      `${r.modelDevice}:${r.codecDevice}: ${
        r.devices.map((l) => l.trim()).join("; ") || "(no device lines)"
      }`,
    );
    if (r.note) out.push(`${r.modelDevice}:${r.codecDevice}: ${r.note}`);
    for (const p of r.problems?.slice(0, 3) ?? []) {
      out.push(`${r.modelDevice}:${r.codecDevice}: ${p.slice(0, 300)}`);
    }
  }
  return out.join("\n");
}

const label = args.label ?? machineLabel();
const outPath = args.out ??
  defaultOut(`full_request_${label.replace(/[^A-Za-z0-9_.-]+/g, "-")}.json`);
const results: ConfigResult[] = [];
const benchStart = performance.now();
let current: System | undefined;

async function writeJson(partial?: string): Promise<void> {
  const doc = {
    generatedAt: new Date().toISOString(),
    label,
    machine: machineInfo(),
    model: Deno.env.get("KVRELAY_MODEL") ?? "infra/model/kvrelay-tiny",
    settings,
    seconds: round((performance.now() - benchStart) / 1000),
    partial: partial ?? null,
    configs: results,
    table: table(results),
  };
  await Deno.writeTextFile(outPath, JSON.stringify(doc, null, 2) + "\n");
}

// Stopped from outside (timeout): stop the system, keep what was measured.
const onSignal = async () => {
  await current?.stop();
  await writeJson("stopped by a signal");
  console.error(`stopped; partial results in ${outPath}`);
  Deno.exit(3);
};
Deno.addSignalListener("SIGTERM", onSignal);
Deno.addSignalListener("SIGINT", onSignal);

for (const { model, codec } of configs) {
  results.push(await runConfig(model, codec));
  await writeJson(results.length < configs.length ? "running" : undefined);
}
console.log(table(results));
console.error(`wrote ${outPath}`);
logFile?.close();
Deno.exit(0);
