/**
 * `deno task bench:load [--rate 8] [--duration-s 15] [--streams 1024] [--max-tokens 32]
 *   [--model PATH] [--tokenizer PATH] [--label L] [--out PATH]`
 *
 * The system under load, as `npm start` runs it (infra/launch/start.ts: its own nats-server,
 * gateway and services on free ports, JetStream in a temporary data dir; KVRELAY_* settings of
 * the environment pass through, e.g. KVRELAY_MAX_INFLIGHT). Two phases, every request a
 * streamed /v1/completions at temperature 0:
 *
 * - steady: `--rate` requests a second for `--duration-s`, sent on a clock whatever the answers
 *   (an open loop, as real clients do);
 * - burst: `--streams` SSE streams opened at once.
 *
 * For each phase: status counts (200, 429, 503, 504, ...), TTFT p50/p99 of the admitted streams,
 * their whole time p50/p99, how fast refusals come (p50/p99), and the gateway's RSS before and at
 * its peak. Prints a markdown table and writes JSON to out/bench/load_<label>.json.
 * @module
 */
import { defaultOut, exitOnHelp } from "./_cli.ts";
import { parseArgs } from "node:util";
import { REPO_DIR } from "../_harness/paths.ts";
import { freePort } from "../_harness/nats_server.ts";
import { DEFAULTS } from "../../shared/config/mod.ts";
import { machineInfo, machineLabel } from "./_machine.ts";

exitOnHelp(import.meta.url);

const args = parseArgs({
  args: Deno.args,
  strict: true,
  options: {
    rate: { type: "string", default: "8" },
    "duration-s": { type: "string", default: "15" },
    streams: { type: "string", default: "1024" },
    "max-tokens": { type: "string", default: "32" },
    model: { type: "string" },
    tokenizer: { type: "string" },
    label: { type: "string" },
    out: { type: "string" },
  },
}).values;
const settings = {
  rate: Number(args.rate),
  durationS: Number(args["duration-s"]),
  streams: Number(args.streams),
  maxTokens: Number(args["max-tokens"]),
  maxInflight: Number(Deno.env.get("KVRELAY_MAX_INFLIGHT") || DEFAULTS.maxInflight),
};
const PROMPTS = ["Once upon a time", "The little dog", "In a small town", "Tom and his sister", "One day"];
/** A request that has not ended by now is counted as hung. */
const REQUEST_LIMIT_MS = 180_000;

interface Result {
  status: number;
  /** The error code inside a stream that started (200). */
  streamError?: string;
  ttftMs?: number;
  ms: number;
  hung?: boolean;
}

/** One streamed completion, timed to its first text chunk and to its end. */
async function stream(base: string, model: string, i: number): Promise<Result> {
  const t0 = performance.now();
  try {
    const r = await fetch(`${base}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model,
        prompt: PROMPTS[i % PROMPTS.length],
        max_tokens: settings.maxTokens,
        temperature: 0,
        stream: true,
      }),
      signal: AbortSignal.timeout(REQUEST_LIMIT_MS),
    });
    if (r.status !== 200) {
      await r.body?.cancel();
      return { status: r.status, ms: performance.now() - t0 };
    }
    let ttftMs: number | undefined;
    let streamError: string | undefined;
    const dec = new TextDecoder();
    for await (const chunk of r.body!) {
      const text = dec.decode(chunk, { stream: true });
      if (ttftMs === undefined && text.includes('"text":"') && !text.includes('"text":""')) {
        ttftMs = performance.now() - t0;
      }
      if (text.includes('"error":')) streamError = /"code":"([a-z_]+)"/.exec(text)?.[1] ?? "error";
    }
    return { status: 200, streamError, ttftMs, ms: performance.now() - t0 };
  } catch {
    return { status: 0, ms: performance.now() - t0, hung: true };
  }
}

function pct(xs: number[], p: number): number | null {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]);
}

/** The gateway's resident set, in MB: the launcher's child running services/gateway/main.ts. */
function gatewayRssMb(launcherPid: number): number | null {
  try {
    for (const e of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(e.name)) continue;
      try {
        const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
        const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
        if (ppid !== launcherPid) continue;
        if (!Deno.readTextFileSync(`/proc/${e.name}/cmdline`).includes("services/gateway/main.ts")) continue;
        const kb = /VmRSS:\s+(\d+)/.exec(Deno.readTextFileSync(`/proc/${e.name}/status`));
        return kb ? Math.round(Number(kb[1]) / 1024) : null;
      } catch { /* gone meanwhile */ }
    }
  } catch { /* no /proc */ }
  return null;
}

interface Phase {
  name: string;
  sent: number;
  statuses: Record<string, number>;
  ttft_ms: { p50: number | null; p99: number | null };
  stream_ms: { p50: number | null; p99: number | null };
  refused_ms: { p50: number | null; p99: number | null };
  wall_s: number;
  gateway_rss_mb: { before: number | null; peak: number | null };
}

/** Runs `send`, which starts request `i` by `go(i)`, and sums up every request it started. */
async function runPhase(
  name: string,
  ctx: { launcherPid: number; one: (i: number) => Promise<Result> },
  send: (go: (i: number) => void) => Promise<void>,
): Promise<Phase> {
  const { launcherPid } = ctx;
  const before = gatewayRssMb(launcherPid);
  let peak = before ?? 0;
  const sampler = setInterval(() => peak = Math.max(peak, gatewayRssMb(launcherPid) ?? 0), 250);
  const t0 = performance.now();
  const all: Promise<Result>[] = [];
  await send((i) => all.push(ctx.one(i)));
  const results = await Promise.all(all);
  clearInterval(sampler);
  const statuses: Record<string, number> = {};
  for (const r of results) {
    // an error inside a started stream counts apart, by its code
    const k = r.hung ? "hung" : r.streamError ? `200+${r.streamError}` : String(r.status);
    statuses[k] = (statuses[k] ?? 0) + 1;
  }
  const ok = results.filter((r) => r.status === 200 && !r.streamError);
  const refused = results.filter((r) => r.status === 429 || r.status === 503);
  return {
    name,
    sent: results.length,
    statuses,
    ttft_ms: {
      p50: pct(ok.map((r) => r.ttftMs!).filter((x) => x !== undefined), 50),
      p99: pct(ok.map((r) => r.ttftMs!).filter((x) => x !== undefined), 99),
    },
    stream_ms: { p50: pct(ok.map((r) => r.ms), 50), p99: pct(ok.map((r) => r.ms), 99) },
    refused_ms: { p50: pct(refused.map((r) => r.ms), 50), p99: pct(refused.map((r) => r.ms), 99) },
    wall_s: Math.round((performance.now() - t0) / 100) / 10,
    gateway_rss_mb: { before, peak: peak || null },
  };
}

function table(phases: Phase[]): string {
  const keys = [...new Set(phases.flatMap((p) => Object.keys(p.statuses)))].sort();
  const head = [
    "phase",
    "sent",
    ...keys,
    "TTFT p50",
    "TTFT p99",
    "stream p50",
    "stream p99",
    "refused p99",
    "RSS MB",
  ];
  const rows = phases.map((p) => [
    p.name,
    String(p.sent),
    ...keys.map((k) => String(p.statuses[k] ?? 0)),
    `${p.ttft_ms.p50 ?? "-"} ms`,
    `${p.ttft_ms.p99 ?? "-"} ms`,
    `${p.stream_ms.p50 ?? "-"} ms`,
    `${p.stream_ms.p99 ?? "-"} ms`,
    `${p.refused_ms.p99 ?? "-"} ms`,
    `${p.gateway_rss_mb.before ?? "?"} → ${p.gateway_rss_mb.peak ?? "?"}`,
  ]);
  return [head, head.map(() => "---"), ...rows].map((r) => `| ${r.join(" | ")} |`).join("\n");
}

async function main() {
  const port = freePort();
  const dataDir = await Deno.makeTempDir({ prefix: "kvrelay-load-" });
  const env: Record<string, string> = {
    KVRELAY_PORT: String(port),
    KVRELAY_DATA_DIR: dataDir,
    NATS_URL: "",
    ...(args.model ? { KVRELAY_MODEL: args.model } : {}),
    ...(args.tokenizer ? { KVRELAY_TOKENIZER: args.tokenizer } : {}),
  };
  const launcher = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--cached-only", `${REPO_DIR}/infra/launch/start.ts`],
    env,
    stdout: "null",
    stderr: "null",
  }).spawn();
  const base = `http://127.0.0.1:${port}`;
  try {
    const deadline = Date.now() + 120_000;
    while (true) {
      try {
        const r = await fetch(`${base}/readyz`);
        await r.body?.cancel();
        if (r.ok) break;
      } catch { /* not yet */ }
      if (Date.now() > deadline) throw new Error("the system did not become ready within 120 s");
      await new Promise((r) => setTimeout(r, 250));
    }
    const model = (await (await fetch(`${base}/v1/models`)).json()).data[0].id as string;
    const ctx = { launcherPid: launcher.pid, one: (i: number) => stream(base, model, i) };
    await Promise.all([0, 1, 2, 3].map(ctx.one)); // warm-up
    console.error(
      `[load] ${model}: steady ${settings.rate}/s for ${settings.durationS} s, then ${settings.streams} streams`,
    );

    const steady = await runPhase(
      `steady ${settings.rate}/s × ${settings.durationS} s`,
      ctx,
      async (go) => {
        const n = Math.round(settings.rate * settings.durationS);
        const t0 = performance.now();
        for (let i = 0; i < n; i++) {
          const wait = t0 + (i * 1000) / settings.rate - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          go(i);
        }
      },
    );
    const burst = await runPhase(`${settings.streams} streams at once`, ctx, (go) => {
      for (let i = 0; i < settings.streams; i++) go(i);
      return Promise.resolve();
    });
    const phases = [steady, burst];
    const label = args.label ?? machineLabel();
    console.log(
      `\n### bench:load on ${label}: ${model}, max_tokens ${settings.maxTokens}, KVRELAY_MAX_INFLIGHT ${settings.maxInflight}\n`,
    );
    console.log(table(phases));
    const out = args.out ?? defaultOut(`load_${label}.json`);
    await Deno.writeTextFile(
      out,
      JSON.stringify({ bench: "load", machine: machineInfo(), model, settings, phases }, null, 2) + "\n",
    );
    console.log(`\nwrote ${out}`);
  } finally {
    try {
      launcher.kill("SIGTERM");
    } catch { /* gone */ }
    await launcher.status;
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await main();
