/**
 * `deno task bench:handoff`: how long the KV hand-off from prefill to decode takes, against
 * sending the cache as fp16, over modelled links of several speeds and over loopback.
 *
 * - W1: kvrelay-tiny's real KV through the real services (gateway → prefill node → decode),
 *   prompts of `--w1` tokens, `max_tokens: 1` so a request's latency is its TTFT. Per request:
 *   `usage.kv.ms.handoff` (end of prefill → KV ready at decode), ratio and wire bytes (fp16
 *   basis), and the bytes NATS carried for it (the server's monitoring endpoint).
 * - W2: Llama-3-8B-shaped KV (32 × 8 × 128) at `--w2` tokens, synthetic but fitted to
 *   kvrelay-tiny's per-channel statistics (`_synthetic_kv.ts`), through the same `HandOff` the
 *   prefill node runs, to a decode sink in another process (`handoff_sink.ts`); no model.
 *
 * Every configuration runs on the same data in the same run: `fp16` (the baseline),
 * `fp16_zstd`, `kvsort`, `fast`, each without and with eviction 8. It prints a table, writes
 * JSON and an SVG plot of hand-off time against link speed to out/bench/ (`--out X.json` to
 * write X.json and X.svg instead, e.g. under tests/bench/results/).
 *
 *   deno task bench:handoff [--w1 512,2048] [--w2 2048,8192] [--links loopback,1,10,25,100]
 *     [--codecs fp16,fp16_zstd,kvsort,fast] [--evict 1,8] [--reps 3] [--error-bound 0.01]
 *     [--w2-links 10,100] [--encoder cpu|webgpu|cuda] [--cuda-devices E,D] [--threads N] [--pipeline 1,0]
 *     [--prefill-groups auto,1]
 *     [--label NAME]
 *   (`--cuda-devices E,D`: with `--encoder cuda`, W2's encoder on CUDA device E and its decode sink on D)
 *   deno task bench:handoff --replot tests/bench/results/handoff_X.json   # redraw a plot
 *   deno task bench:handoff --summarize X.json --codec-json C.json [--out Y.json]   # its summary
 *     again, the GPU codec figures from C.json (bench:codec-fast-gpu of the same code and host)
 * @module
 */
import { defaultOut, exitOnHelp } from "./_cli.ts";
import { parseArgs } from "node:util";
import { freePort, startNatsServer } from "../_harness/nats_server.ts";
import { startServices } from "../_harness/services.ts";
import { REPO_DIR } from "../_harness/paths.ts";
import { loadConfig } from "../../shared/config/mod.ts";
import { loadConfiguredModel } from "../../shared/pipeline/load_model.ts";
import { defaultKvSettings } from "../../shared/pipeline/kv_settings.ts";
import { runPrefill } from "../../shared/pipeline/prefill_stage.ts";
import { cpuFrameEncoder, type FrameEncoder, type PrefillKv } from "../../shared/pipeline/compress_stage.ts";
import { connectNats, LinkModel, requestJson } from "../../shared/nats/mod.ts";
import type { CodecChoice } from "../../shared/config/mod.ts";
import { CODEC_TRAITS, isCodecName } from "../../shared/codec/mod.ts";
import type { KvUsage } from "../../shared/handoff/contract.ts";
import { HandOff } from "../../services/compression/handoff.ts";
import { CodecPool } from "../../shared/pipeline/workers/codec_pool.ts";
import { fitChannelStats, llama3_8b, syntheticKv } from "./_synthetic_kv.ts";
import { handoffPoints, handoffSpec } from "./plot/figures.ts";
import { machineInfo, machineLabel } from "./_machine.ts";
import { SINK, type SinkOpen } from "./handoff_sink.ts";
import { benchPromptIds } from "./_bench_prompt.ts";

exitOnHelp(import.meta.url);

const { values: a } = parseArgs({
  args: Deno.args,
  options: {
    w1: { type: "string", default: "512,2048" },
    w2: { type: "string", default: "2048,8192" },
    links: { type: "string", default: "loopback,1,10,25,100" },
    "w2-links": { type: "string" },
    codecs: { type: "string", default: "fp16,fp16_zstd,kvsort,fast" },
    evict: { type: "string", default: "1,8" },
    reps: { type: "string", default: "3" },
    "error-bound": { type: "string", default: "0.01" },
    encoder: { type: "string", default: "cpu" },
    pipeline: { type: "string", default: "1" },
    // W1: KVRELAY_PREFILL_GROUPS of the prefill node (auto: the hand-off starts while prefill runs)
    "prefill-groups": { type: "string", default: "auto" },
    threads: { type: "string", default: "1" },
    "cuda-devices": { type: "string", default: "0,0" },
    label: { type: "string" },
    replot: { type: "string" },
    summarize: { type: "string" },
    "codec-json": { type: "string" },
    out: { type: "string" },
  },
});
const list = (s: string) => s.split(",").map((x) => x.trim()).filter(Boolean);
const W1 = list(a.w1!).map(Number);
const W2 = list(a.w2!).map(Number);
const linkList = (s: string) => list(s).map((l) => (l === "loopback" ? null : Number(l)));
const LINKS = linkList(a.links!);
const W2_LINKS = a["w2-links"] ? linkList(a["w2-links"]) : LINKS;
const CODECS = list(a.codecs!) as CodecChoice[];
const EVICT = list(a.evict!).map(Number);
const REPS = Number(a.reps);
const EB = Number(a["error-bound"]);
const PIPELINE = list(a.pipeline!).map((p) => p === "1");
const PREFILL_GROUPS = list(a["prefill-groups"]!);
/** With `--encoder cuda`: the CUDA device of W2's encoder and of its decode sink (two GPUs: 0,1). */
const [CUDA_ENCODE, CUDA_DECODE] = list(a["cuda-devices"]!).map(Number);
checkArgs();

/** Every value the bench takes must mean something: a bad one stops it before anything runs. */
function checkArgs(): void {
  const fail = (flag: string, v: unknown) => {
    throw new Error(`bench:handoff: bad --${flag} ${JSON.stringify(v)}`);
  };
  const counts = [...W1, ...W2, ...EVICT];
  if (counts.some((n) => !(Number.isInteger(n) && n >= 1))) fail("w1/w2/evict", [...W1, ...W2, ...EVICT]);
  if ([...LINKS, ...W2_LINKS].some((g) => g !== null && !(g > 0))) fail("links", a.links);
  for (const c of CODECS) if (!isCodecName(c)) fail("codecs", c);
  if (!(Number.isInteger(REPS) && REPS >= 1)) fail("reps", a.reps);
  if (!(EB > 0 && EB <= 1)) fail("error-bound", a["error-bound"]);
  if (list(a.pipeline!).some((p) => p !== "0" && p !== "1")) fail("pipeline", a.pipeline);
  if (PREFILL_GROUPS.some((g) => g !== "auto" && !(Number.isInteger(Number(g)) && Number(g) >= 1))) {
    fail("prefill-groups", PREFILL_GROUPS);
  }
  // W2 has no model: only W1's prefill node runs in groups
  if (W1.length === 0 && a["prefill-groups"] !== "auto") fail("prefill-groups (needs --w1)", PREFILL_GROUPS);
  if (a.encoder !== "cpu" && a.encoder !== "webgpu" && a.encoder !== "cuda") fail("encoder", a.encoder);
  if (!(Number.isInteger(Number(a.threads)) && Number(a.threads) >= 1)) fail("threads", a.threads);
  const devices = list(a["cuda-devices"]!);
  if (devices.length !== 2 || [CUDA_ENCODE, CUDA_DECODE].some((d) => !(Number.isInteger(d) && d >= 0))) {
    fail("cuda-devices", a["cuda-devices"]);
  }
  if (a["cuda-devices"] !== "0,0" && (a.encoder !== "cuda" || W2.length === 0)) {
    fail("cuda-devices (W2's encoder and sink: needs --encoder cuda and --w2)", devices);
  }
  if (a["codec-json"] !== undefined && a.summarize === undefined) {
    fail("codec-json (needs --summarize)", a["codec-json"]);
  }
  // --replot and --summarize read a results file and run nothing: a run's flags would do nothing
  const mode = a.replot !== undefined ? "replot" : a.summarize !== undefined ? "summarize" : undefined;
  if (mode) {
    const takes = mode === "replot" ? ["replot"] : ["summarize", "codec-json", "out", "label"];
    const given = Deno.args.filter((x) => x.startsWith("--")).map((x) => x.slice(2).split("=")[0]);
    const extra = given.filter((f) => !takes.includes(f));
    if (extra.length) fail(`${extra[0]} (--${mode} takes only --${takes.join(", --")})`, a[extra[0] as "w1"]);
  }
}

interface Row {
  workload: "W1" | "W2";
  tokens: number;
  link_gbps: number | null;
  /** Layers encoded, sent and decoded overlapping (true), or all encoded first. */
  pipeline: boolean;
  /** W1: the prefill node's KVRELAY_PREFILL_GROUPS ("auto", or a count; "1" is one graph). */
  prefill_groups: string | null;
  codec: CodecChoice;
  eviction_rate: number;
  handoff_ms: number;
  ttft_ms: number | null;
  prefill_ms: number | null;
  encode_ms: number;
  decode_kv_ms: number;
  ratio: number;
  raw_bytes: number;
  wire_bytes: number;
  /** Bytes clients published into NATS for the request (W1). */
  nats_bytes: number | null;
  /** The link's time for the wire bytes alone (bytes / bandwidth). */
  link_ms: number | null;
  reps: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const r3 = (x: number) => Math.round(x * 1000) / 1000;
const configs = EVICT.flatMap((e) => CODECS.map((codec) => ({ codec, evictionRate: e })));
const linkMs = (gbps: number | null, bytes: number) => (gbps ? r3(bytes / (gbps * 1e9 / 8) * 1000) : null);

function row(
  workload: Row["workload"],
  tokens: number,
  gbps: number | null,
  pipeline: boolean,
  cfg: { codec: CodecChoice; evictionRate: number },
  runs: { kv: KvUsage; ttft?: number; nats?: number }[],
  prefillGroups: string | null = null,
): Row {
  const kv = runs[0].kv;
  return {
    workload,
    tokens,
    link_gbps: gbps,
    pipeline,
    prefill_groups: prefillGroups,
    codec: cfg.codec,
    eviction_rate: cfg.evictionRate,
    handoff_ms: r3(median(runs.map((r) => r.kv.ms.handoff))),
    ttft_ms: runs[0].ttft === undefined ? null : r3(median(runs.map((r) => r.ttft!))),
    prefill_ms: runs[0].ttft === undefined ? null : r3(median(runs.map((r) => r.kv.ms.prefill))),
    encode_ms: r3(median(runs.map((r) => r.kv.ms.encode))),
    decode_kv_ms: r3(median(runs.map((r) => r.kv.ms.decode_kv))),
    ratio: kv.ratio,
    raw_bytes: kv.raw_bytes,
    wire_bytes: kv.wire_bytes,
    nats_bytes: runs[0].nats === undefined ? null : median(runs.map((r) => r.nats!)),
    link_ms: linkMs(gbps, kv.wire_bytes),
    reps: runs.length,
  };
}

// --- W1: kvrelay-tiny through the services --------------------------------------------------
async function natsInBytes(monitor: number): Promise<number> {
  return (await (await fetch(`http://127.0.0.1:${monitor}/varz`)).json()).in_bytes as number;
}

async function runW1(rows: Row[]): Promise<void> {
  if (!W1.length) return;
  const prompts = await benchPromptIds(W1);
  const monitor = freePort();
  const nats = await startNatsServer({ jetstream: false, extraConfig: `http: 127.0.0.1:${monitor}` });
  try {
    const runs = LINKS.flatMap((g) => PIPELINE.flatMap((p) => PREFILL_GROUPS.map((n) => [g, p, n] as const)));
    for (const [gbps, pipeline, groups] of runs) {
      const env: Record<string, string> = gbps ? { KVRELAY_LINK_GBPS: String(gbps) } : {};
      env.KVRELAY_PREFILL_GROUPS = groups;
      env.KVRELAY_CODEC_DEVICE = a.encoder!;
      env.KVRELAY_PIPELINE = pipeline ? "1" : "0";
      env.KVRELAY_CODEC_THREADS = a.threads!;
      const svc = await startServices(nats.url, env);
      try {
        for (const tokens of W1) {
          const ids = prompts.get(tokens)!;
          for (const cfg of configs) {
            const runs: { kv: KvUsage; ttft: number; nats: number }[] = [];
            for (let rep = -2; rep < REPS; rep++) { // two warm-ups
              const before = await natsInBytes(monitor);
              const t0 = performance.now();
              const res = await fetch(`${svc.baseUrl}/v1/completions`, {
                method: "POST",
                headers: { "content-type": "application/json" },
                body: JSON.stringify({
                  model: "kvrelay-tiny",
                  prompt: ids,
                  max_tokens: 1,
                  temperature: 0,
                  kv_compression: {
                    codec: cfg.codec,
                    eviction_rate: cfg.evictionRate,
                    ...(CODEC_TRAITS[cfg.codec].bounded ? { error_bound: EB, error_mode: "rel" } : {}),
                  },
                }),
              });
              const json = await res.json();
              const ttft = performance.now() - t0;
              if (res.status !== 200) throw new Error(`W1 ${cfg.codec}: ${JSON.stringify(json)}`);
              const nats = (await natsInBytes(monitor)) - before;
              if (rep >= 0) runs.push({ kv: json.usage.kv, ttft, nats });
            }
            const r = row("W1", ids.length, gbps, pipeline, cfg, runs, groups);
            rows.push(r);
            console.error(progress(r));
          }
        }
      } finally {
        await svc.stop();
      }
    }
  } finally {
    await nats.stop();
  }
}

// --- W2: Llama-3-8B-shaped KV through HandOff, no model -----------------------------------
async function tinyStats() {
  const config = loadConfig({});
  const model = await loadConfiguredModel(config);
  try {
    const ids = (await benchPromptIds([2000])).get(2000)!;
    const kv = defaultKvSettings(config.kv);
    const pre = await runPrefill(model, ids, {
      kv,
      sampling: { maxTokens: 1, temperature: 0, topP: 1 },
      rng: Math.random,
    });
    return fitChannelStats(pre.kv);
  } finally {
    await model.close();
  }
}

/**
 * The frame encoder for each codec: the CPU codec, or with `--encoder webgpu` the GPU where it
 * runs the codec, or with `--encoder cuda` the fast codec on CUDA (the others on the CPU).
 */
async function encoders(): Promise<{ encoderFor(codec: CodecChoice): FrameEncoder; destroy(): void }> {
  const threads = Number(a.threads);
  if (a.encoder === "cuda") {
    const { createCudaFastCodec } = await import("../../shared/codec/cuda/mod.ts");
    const { cudaFrameEncoder } = await import("../../services/compression/codec_device.ts");
    const cuda = createCudaFastCodec({
      libPath: Deno.env.get("KVRELAY_CUDA_LIB") || undefined,
      device: CUDA_ENCODE,
    });
    console.error(`codec backend: cuda on ${cuda.device} (fast codec; the others on the CPU)`);
    const fast = cudaFrameEncoder(cuda);
    return { encoderFor: (codec) => (codec === "fast" ? fast : cpuFrameEncoder), destroy() {} };
  }
  if (a.encoder !== "webgpu" && threads > 1) {
    const pool = new CodecPool(threads);
    const enc = pool.frameEncoder(2);
    return { encoderFor: () => enc, destroy: () => pool.close() };
  }
  if (a.encoder !== "webgpu") return { encoderFor: () => cpuFrameEncoder, destroy() {} };
  const { selectCodecBackend } = await import("../../shared/codec/webgpu/mod.ts");
  const { gpuFrameEncoder } = await import("../../services/compression/codec_device.ts");
  const backend = await selectCodecBackend("webgpu");
  console.error(`codec backend: ${backend.description}`);
  const gpu = {
    fast: gpuFrameEncoder(backend, console.error, { codec: "fast" }),
    other: gpuFrameEncoder(backend),
  };
  return {
    encoderFor: (
      codec,
    ) => (!CODEC_TRAITS[codec].gpu ? cpuFrameEncoder : codec === "fast" ? gpu.fast : gpu.other),
    destroy: () => backend.destroy(),
  };
}

async function runW2(rows: Row[]): Promise<void> {
  if (!W2.length) return;
  const stats = await tinyStats();
  const nats = await startNatsServer({ jetstream: false, maxPayload: 8 * 1024 * 1024 });
  const sink = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--cached-only",
      `${REPO_DIR}/tests/bench/handoff_sink.ts`,
      nats.url,
      a.encoder!,
      a.threads!,
      String(CUDA_DECODE),
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const nc = await connectNats(nats.url, "kvrelay-bench");
  const { encoderFor, destroy } = await encoders();
  try {
    const reader = sink.stdout.pipeThrough(new TextDecoderStream()).getReader();
    await reader.read(); // {"ready":true}
    reader.releaseLock();
    const base = defaultKvSettings(loadConfig({}).kv);
    for (const tokens of W2) {
      const t0 = performance.now();
      const prefill: PrefillKv = syntheticKv(llama3_8b(tokens), stats, tokens);
      console.error(`W2 ${tokens} tokens: synthetic KV in ${(performance.now() - t0).toFixed(0)} ms`);
      for (const [gbps, pipeline] of W2_LINKS.flatMap((g) => PIPELINE.map((p) => [g, p] as const))) {
        const link = gbps ? new LinkModel({ gbps }) : undefined;
        for (const cfg of configs) {
          const runs: { kv: KvUsage }[] = [];
          for (let rep = -1; rep < REPS; rep++) {
            const requestId = `w2-${tokens}-${gbps}-${cfg.codec}-${cfg.evictionRate}-${rep}`;
            const open: SinkOpen = { requestId, nLayers: 32, nKvHeads: 8, headDim: 128, nPos: tokens };
            await requestJson(nc, SINK.open, open, { timeoutMs: 10_000 });
            const kv = {
              ...base,
              codec: cfg.codec,
              errorBound: EB,
              errorMode: "rel" as const,
              evictionRate: cfg.evictionRate,
            };
            const usage = await new HandOff({ nc, encoder: encoderFor(cfg.codec), link, pipeline }, {
              requestId,
              kv,
              decodeIngest: SINK.ingest,
              prefill: { firstToken: 0, prefillMs: 0, endedAt: performance.now() }, // no model: KV ready now
              timeoutMs: 600_000,
            }, prefill).run();
            if (rep >= 0) runs.push({ kv: usage });
          }
          const r = row("W2", tokens, gbps, pipeline, cfg, runs);
          rows.push(r);
          console.error(progress(r));
        }
      }
    }
  } finally {
    destroy();
    await nc.close();
    sink.kill("SIGTERM");
    await sink.status;
    await nats.stop();
  }
}

// --- report ---------------------------------------------------------------------------------
const name = (
  r: { codec: string; eviction_rate: number; pipeline?: boolean; prefill_groups?: string | null },
) =>
  (r.eviction_rate > 1 ? `${r.codec} + evict ${r.eviction_rate}` : r.codec) +
  (r.pipeline === false ? " (not pipelined)" : "") +
  (r.prefill_groups === "1"
    ? " (prefill first)"
    : r.prefill_groups && r.prefill_groups !== "auto"
    ? ` (prefill in ${r.prefill_groups} groups)`
    : "");
const linkName = (g: number | null) => (g === null ? "loopback" : `${g} Gbit/s`);

function progress(r: Row): string {
  return `${r.workload} ${r.tokens} ${linkName(r.link_gbps)} ${
    name(r)
  }: hand-off ${r.handoff_ms} ms, ratio ${r.ratio}` +
    (r.ttft_ms !== null ? `, TTFT ${r.ttft_ms} ms` : "");
}

function baseline(rows: Row[], r: Row): Row | undefined {
  return rows.find((b) =>
    b.workload === r.workload && b.tokens === r.tokens && b.link_gbps === r.link_gbps && b.codec === "fp16" &&
    b.eviction_rate === 1 && b.pipeline === r.pipeline &&
    (b.prefill_groups ?? null) === (r.prefill_groups ?? null)
  );
}

function table(rows: Row[]): string {
  const out = [
    "| workload | tokens | link | config | ratio (fp16) | wire MB | hand-off ms | × vs fp16 | × vs fp16 bytes/link | link ms for wire bytes | encode ms | decode ms | TTFT ms | NATS bytes / wire |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const r of rows) {
    const b = baseline(rows, r);
    out.push(
      `| ${r.workload} | ${r.tokens} | ${linkName(r.link_gbps)} | ${name(r)} | ${r.ratio} | ${
        (r.wire_bytes / 1e6).toFixed(2)
      } | ${r.handoff_ms.toFixed(1)} | ${b ? (b.handoff_ms / r.handoff_ms).toFixed(2) : "–"} | ${
        r.link_gbps ? (linkMs(r.link_gbps, r.raw_bytes)! / r.handoff_ms).toFixed(2) : "–"
      } | ${r.link_ms?.toFixed(1) ?? "–"} | ${r.encode_ms.toFixed(1)} | ${r.decode_kv_ms.toFixed(1)} | ${
        r.ttft_ms?.toFixed(1) ?? "–"
      } | ${r.nats_bytes !== null ? (r.nats_bytes / r.wire_bytes).toFixed(3) : "–"} |`,
    );
  }
  return out.join("\n");
}

/**
 * The run's plot (tests/bench/plot/figures.ts draws the same for docs/plots/handoff_vs_link).
 * The renderer loads on first use, so a host without the plotting packages (a GPU host's pack
 * leaves them out for room) still measures and writes its JSON; redraw with --replot.
 */
async function plot(rows: Row[]): Promise<string> {
  const { renderSvg } = await import("./plot/render.ts");
  return renderSvg(handoffSpec(handoffPoints(rows, ""), "Hand-off time vs link speed", "bench:handoff"));
}

/**
 * The fast codec's GPU throughput from `bench:codec-fast-gpu` run under the same label just
 * before (fp16-basis GB/s: end to end with host transfers, and the kernels alone; on CUDA also
 * the encode of fp16 input widened on the device), if present.
 */
function gpuCodecSummary(encoder = a.encoder) {
  const named = a["codec-json"];
  if (named !== undefined) { // asked for by name: a missing or foreign file is an error, not a blank
    const figures = codecFigures(JSON.parse(Deno.readTextFileSync(named)), encoder, named.split("/").at(-1)!);
    if (!figures) throw new Error(`bench:handoff: --codec-json ${named} has no ${encoder} codec figures`);
    return figures;
  }
  try {
    const label = a.label ?? machineLabel();
    // This run's bench:codec-fast-gpu (out/bench), else the tracked result.
    const name = `codec_fast_gpu_${label}.json`;
    const path = [defaultOut(name), `${REPO_DIR}/tests/bench/results/${name}`].find((p) => {
      try {
        return Deno.statSync(p).isFile;
      } catch {
        return false;
      }
    });
    return path ? codecFigures(JSON.parse(Deno.readTextFileSync(path)), encoder, label) ?? {} : {};
  } catch {
    return {};
  }
}

/** A bench:codec-fast-gpu JSON's figures for `encoder`'s backend, or undefined when it has none. */
// deno-lint-ignore no-explicit-any
function codecFigures(j: any, encoder: string, source: string) {
  const g = j.gpu, c = j.cuda;
  if (encoder === "cuda" && c?.encode) {
    return {
      gpu_codec_source: `bench:codec-fast-gpu --encoder cuda, ${source} (${c.device})`,
      gpu_codec_frames: `${j.config?.frames ?? "?"} frames of [${j.config?.tokens ?? "?"}, 128]`,
      gpu_encode_gbps: r3(c.encode.e2eGBs),
      // fp16 input widened on the device (f32 streams); absent from runs before it existed
      gpu_encode_f16_gbps: c.encodeF16 ? r3(c.encodeF16.e2eGBs) : null,
      gpu_encode_f16_into_gbps: c.encodeF16Into ? r3(c.encodeF16Into.e2eGBs) : null,
      gpu_decode_gbps: r3(c.decode.e2eGBs),
      // into outputs reused across calls: what the services' pools do
      gpu_encode_into_gbps: c.encodeInto ? r3(c.encodeInto.e2eGBs) : null,
      gpu_decode_into_gbps: c.decodeInto ? r3(c.decodeInto.e2eGBs) : null,
      gpu_encode_kernel_gbps: r3(c.encode.kernelGBs),
      gpu_decode_kernel_gbps: r3(c.decode.kernelGBs),
      gpu_encode_first_call_gbps: r3(c.encode.firstCallGBs),
      gpu_host_to_device_gbps: c.encode.h2dGBs === null ? null : r3(c.encode.h2dGBs),
      gpu_device_to_host_gbps: c.decode.d2hGBs === null ? null : r3(c.decode.d2hGBs),
      gpu_checked: c.checked,
    };
  }
  if (!g) return undefined;
  return {
    gpu_codec_frames: `${j.config?.frames ?? "?"} frames of [${j.config?.tokens ?? "?"}, 128]`,
    gpu_encode_gbps: r3(g.encode.e2eGBs),
    gpu_decode_gbps: r3(g.decode.e2eGBs),
    gpu_encode_kernel_gbps: r3(g.encode.kernelGBs),
    gpu_decode_kernel_gbps: r3(g.decode.kernelGBs),
    gpu_host_to_device_gbps: r3(g.transfers.upGBsRaw),
    gpu_device_to_host_gbps: r3(g.transfers.downGBsRaw),
  };
}

/** The figures the issues' targets name, where this run has them (its W1 and W2 token counts). */
function summary(rows: Row[], w1s: number[] = W1, w2s: number[] = W2, encoder = a.encoder) {
  const speedup = (w: Row["workload"], tokens: number, gbps: number, codec: string, evict: number) => {
    const r = rows.find((x) =>
      x.workload === w && x.tokens === tokens && x.link_gbps === gbps && x.codec === codec &&
      x.eviction_rate === evict
    );
    const b = r && baseline(rows, r);
    return r && b ? r3(b.handoff_ms / r.handoff_ms) : null;
  };
  /** Against the fp16 bytes' time on the link alone: no cast, no copies, a perfect fp16 sender. */
  const vsIdeal = (w: Row["workload"], tokens: number, gbps: number, codec: string, evict: number) => {
    const r = rows.find((x) =>
      x.workload === w && x.tokens === tokens && x.link_gbps === gbps && x.codec === codec &&
      x.eviction_rate === evict && x.pipeline
    );
    return r ? r3(linkMs(gbps, r.raw_bytes)! / r.handoff_ms) : null;
  };
  const w2 = w2s.includes(8192) ? 8192 : w2s.at(-1);
  return {
    ...gpuCodecSummary(encoder),
    w1_2k_1gbit_fast: w1s.length
      ? speedup("W1", Math.max(...rows.filter((r) => r.workload === "W1").map((r) => r.tokens)), 1, "fast", 1)
      : null,
    w1_2k_1gbit_fast_evict8: w1s.length
      ? speedup("W1", Math.max(...rows.filter((r) => r.workload === "W1").map((r) => r.tokens)), 1, "fast", 8)
      : null,
    w2_tokens: w2 ?? null,
    speedup_10gbit_codec: w2 ? speedup("W2", w2, 10, "fast", 1) : null,
    speedup_10gbit_codec_evict8: w2 ? speedup("W2", w2, 10, "fast", 8) : null,
    speedup_100gbit_codec: w2 ? speedup("W2", w2, 100, "fast", 1) : null,
    speedup_vs_ideal_fp16_10gbit_codec: w2 ? vsIdeal("W2", w2, 10, "fast", 1) : null,
    speedup_vs_ideal_fp16_10gbit_codec_evict8: w2 ? vsIdeal("W2", w2, 10, "fast", 8) : null,
    speedup_vs_ideal_fp16_100gbit_codec: w2 ? vsIdeal("W2", w2, 100, "fast", 1) : null,
  };
}

if (import.meta.main && a.summarize) {
  // a results file's summary again, its GPU codec figures from --codec-json (a bench:codec-fast-gpu
  // run of the same code on the same host): deno task bench:handoff --summarize X.json --codec-json C.json
  const j = JSON.parse(await Deno.readTextFile(a.summarize));
  j.summary = summary(j.rows as Row[], j.settings.w1, j.settings.w2, j.settings.encoder);
  const out = a.out ?? a.summarize;
  await Deno.writeTextFile(out, JSON.stringify(j, null, 2));
  console.log(`wrote ${out}: summary ${JSON.stringify(j.summary)}`);
  Deno.exit(0);
}

if (import.meta.main && a.replot) {
  // redraw a results file's plot from its rows: deno task bench:handoff --replot results/handoff_X.json
  const rows = JSON.parse(await Deno.readTextFile(a.replot)).rows as Row[];
  await Deno.writeTextFile(a.replot.replace(/\.json$/, ".svg"), await plot(rows));
  Deno.exit(0);
}

if (import.meta.main) {
  const rows: Row[] = [];
  await runW1(rows);
  await runW2(rows);
  const label = a.label ?? machineLabel();
  const md = table(rows);
  console.log(md);
  const s = summary(rows);
  console.log(`\nsummary: ${JSON.stringify(s)}`);
  const base = a.out ? a.out.replace(/\.json$/, "") : defaultOut(`handoff_${label}`);
  await Deno.writeTextFile(
    `${base}.json`,
    JSON.stringify(
      {
        bench: "handoff",
        date: new Date().toISOString(),
        machine: machineInfo(),
        settings: {
          w1: W1,
          w2: W2,
          links: LINKS,
          codecs: CODECS,
          evict: EVICT,
          reps: REPS,
          error_bound: EB,
          encoder: a.encoder,
          cuda_devices: a.encoder === "cuda" ? { encode: CUDA_ENCODE, decode: CUDA_DECODE } : undefined,
          threads: Number(a.threads),
          pipeline: PIPELINE,
          prefill_groups: PREFILL_GROUPS,
        },
        summary: s,
        rows,
      },
      null,
      1,
    ) + "\n",
  );
  try {
    await Deno.writeTextFile(`${base}.svg`, await plot(rows));
    console.error(`wrote ${base}.json and ${base}.svg`);
  } catch (err) {
    console.error(
      `wrote ${base}.json; no plot here (${(err as Error).message}): redraw with --replot ${base}.json`,
    );
  }
}
