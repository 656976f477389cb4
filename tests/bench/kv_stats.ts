/**
 * `deno task eval:kv-stats (--model DIR [--tokens 2048] [--prompt-file F] [--tokenizer T] [--device D]
 *   | --samples DIR) [--k 32] [--q N] [--outlier-factor 4] [--rels 1e-3,1e-2,3e-2] [--codecs LIST|none] [--out F]`
 *
 * Measures a model's KV cache against the properties that decide how well KVSort-style
 * compression works, per tensor kind (K, V), per layer and over all (layer, KV head) frames:
 * - adjacent-token rank correlation of the channel values, and within groups of k tokens (the
 *   tokens one sort index serves) against the group's first token and the group's column sums;
 * - per-channel magnitude stability: top-q channel overlap per token, and the rank correlation of
 *   per-channel mean |x| between the two halves of the context;
 * - outlier channels (mean |x| over `--outlier-factor` × the median channel's): count, energy
 *   share, persistence between the halves (by channel, and by rotary pair);
 * - each codec's ratio on the fp16 basis (2 bytes a value) at each relative bound, the bound being
 *   rel × (max − min) of the layer's whole K or V (all heads), checked on decode; plus fp16,
 *   fp16 + zstd and zstd -3 on the fp16 values.
 * The definitions are in tests/bench/kv_stats/*.ts and written into the JSON.
 *
 * `--model DIR` runs the model's prefill on the first `--tokens` tokens of the bench prompt
 * (tests/bench/_bench_prompt.ts) or of `--prompt-file`; `--samples DIR` reads every
 * `X.k.npy` / `X.v.npy` pair there (`[layer, position, kv_head, head_dim]` fp32, keys after RoPE:
 * ../shared/kv-samples/<model>/, or what `kvrelay dump-kv` wrote). Both may be given.
 * Prints markdown tables and writes JSON (default out/bench/kv_stats_<name>.json; the tracked
 * results are tests/bench/results/kv_stats_<name>.json, drawn by `deno task plots`). Exits 1 when a
 * decoded value broke its bound.
 * @module
 */
import { parseArgs } from "node:util";
import { defaultOut, exitOnHelp } from "./_cli.ts";
import { type KvSource, modelSource, samplesSource } from "./kv_stats/kv_source.ts";
import { frameStats, STAT_DEFINITIONS, type StatsOptions } from "./kv_stats/frame_stats.ts";
import { type FrameStatsRow, type Spread, summarize, type SummaryRow } from "./kv_stats/summary.ts";
import { codecCases, codecRatio, type CodecRatioRow } from "./kv_stats/codec_ratio.ts";
import { DEFAULT_OUTLIER_FACTOR } from "./kv_stats/outlier_channels.ts";

exitOnHelp(import.meta.url);

const { values: v } = parseArgs({
  args: Deno.args,
  options: {
    model: { type: "string" },
    tokenizer: { type: "string" },
    tokens: { type: "string", default: "2048" },
    "prompt-file": { type: "string" },
    device: { type: "string" },
    threads: { type: "string", default: "2" },
    samples: { type: "string", multiple: true },
    k: { type: "string", default: "32" },
    q: { type: "string" },
    "outlier-factor": { type: "string", default: String(DEFAULT_OUTLIER_FACTOR) },
    rels: { type: "string", default: "1e-3,1e-2,3e-2" },
    codecs: { type: "string", default: "all" },
    out: { type: "string" },
  },
});
if (!v.model && !v.samples?.length) {
  throw new RangeError("give --model DIR and/or --samples DIR (see --help)");
}
const opts: StatsOptions = {
  k: Number(v.k),
  q: v.q === undefined ? undefined : Number(v.q),
  outlierFactor: Number(v["outlier-factor"]),
};
const rels = v.rels.split(",").map(Number);
if (!rels.every((r) => r > 0 && r < 1)) {
  throw new RangeError(`--rels: relative bounds in (0, 1), got ${v.rels}`);
}
const device = v.device as "cpu" | "webgpu" | "auto" | undefined;
if (device !== undefined && !["cpu", "webgpu", "auto"].includes(device)) {
  throw new RangeError(`--device: cpu, webgpu or auto, got ${device}`);
}
const tokens = Number(v.tokens);
if (!(Number.isSafeInteger(tokens) && tokens >= 2)) {
  throw new RangeError(`--tokens: at least 2, got ${v.tokens}`);
}
/** The codecs asked for by name (undefined: all of them). */
const wanted = v.codecs === "all" ? undefined : new Set(v.codecs === "none" ? [] : v.codecs.split(","));
const known = codecCases(opts.k ?? 32).map((c) => c.name);
for (const name of wanted ?? []) {
  if (!known.includes(name)) {
    throw new RangeError(`--codecs: '${name}' is none of all, none, ${known.join(", ")}`);
  }
}

const t0 = performance.now();
const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;
const sources: KvSource[] = [];
if (v.model) {
  const threads = Number(v.threads);
  sources.push(
    await modelSource(v.model, {
      tokens,
      promptFile: v["prompt-file"],
      tokenizerPath: v.tokenizer,
      device,
      threads,
    }),
  );
}
for (const dir of v.samples ?? []) sources.push(samplesSource(dir));

/** What the JSON holds for one source. */
interface SourceResult extends Omit<KvSource, "frames" | "coefficients"> {
  coefficients: string | null;
  summary: SummaryRow[];
  codecs: CodecRatioRow[];
  frames: FrameStatsRow[];
}

const results: SourceResult[] = [];
for (const src of sources) {
  console.error(`${src.name}: ${src.frames.length} frames of [${src.shape}] (${elapsed()})`);
  const frames: FrameStatsRow[] = src.frames.map((f) => ({
    kind: f.kind,
    sample: f.sample,
    layer: f.layer,
    head: f.head,
    ...frameStats(f, opts),
  }));
  console.error(`${src.name}: statistics done (${elapsed()})`);
  const codecs: CodecRatioRow[] = [];
  for (const c of codecCases(opts.k!, src.coefficients).filter((c) => wanted?.has(c.name) ?? true)) {
    for (const rel of c.bounded ? rels : [null]) {
      for (const kind of ["K", "V", "K+V"]) {
        const of = src.frames.filter((f) => kind === "K+V" || f.kind === kind);
        codecs.push(codecRatio(kind, of, c, rel));
      }
      console.error(`${src.name}: ${c.name}${rel === null ? "" : ` at ${rel}`} (${elapsed()})`);
    }
  }
  const { frames: _, coefficients, ...meta } = src;
  results.push({
    ...meta,
    coefficients: coefficients?.hash ?? null,
    summary: summarize(frames),
    codecs,
    frames,
  });
}

// --- tables ----------------------------------------------------------------------------------
const num = (x: number | null, d = 2) => x === null ? "–" : x.toFixed(d);
const cell = (s: Spread, d = 2) => s.n === 0 ? "–" : `${num(s.mean, d)} (${num(s.min, d)}–${num(s.max, d)})`;
for (const r of results) {
  const q = r.summary[0]?.stats.topq_chance.mean;
  console.log(
    `\n## ${r.name}: ${r.from} ${r.path}, [layers, tokens, kv_heads, head_dim] = [${r.shape.join(", ")}]`,
  );
  console.log(
    `${r.samples.length} sample(s); mean (min–max) over frames; k = ${opts.k}; top-q chance ${
      num(q ?? null)
    }\n`,
  );
  console.log(
    "| kind | layer | adjacent ρ | group-first ρ | group-sum ρ | halves ρ of mean \\|x\\| | top-q overlap | outliers | outlier energy | persistence | by rotary pair |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|---|");
  for (const s of r.summary) {
    const x = s.stats;
    console.log(
      `| ${s.kind} | ${s.layer ?? "all"} | ${cell(x.rank_corr_adjacent)} | ${
        cell(x.rank_corr_group_first)
      } | ${cell(x.rank_corr_group_sum)} | ${cell(x.magnitude_halves_corr)} | ${cell(x.topq_overlap)} | ${
        cell(x.outlier_count, 1)
      } | ${cell(x.outlier_energy_share)} | ${cell(x.outlier_persistence)} | ${
        cell(x.outlier_pair_persistence)
      } |`,
    );
  }
  if (r.codecs.length) {
    console.log("\n| codec | rel | K | V | K+V | max err / bound |\n|---|---|---|---|---|---|");
  }
  for (const c of r.codecs.filter((c) => c.kind === "K+V")) {
    const of = (kind: string) =>
      r.codecs.find((x) => x.kind === kind && x.codec === c.codec && x.rel === c.rel)!;
    console.log(
      `| ${c.codec} | ${c.rel ?? "–"} | ${num(of("K").ratio_fp16)} | ${num(of("V").ratio_fp16)} | ${
        num(c.ratio_fp16)
      } | ${num(c.max_err_over_bound, 3)} |`,
    );
  }
}

const out = v.out ?? defaultOut(`kv_stats_${results.map((r) => r.name).join("+")}.json`);
await Deno.writeTextFile(
  out,
  JSON.stringify(
    {
      what: "KV-cache properties that decide KVSort-style compression, and each codec's ratio (fp16 basis)",
      definitions: STAT_DEFINITIONS,
      settings: {
        k: opts.k,
        q: opts.q ?? "max(1, round(head_dim / 8))",
        outlier_factor: opts.outlierFactor,
        rels,
        error_bound: "abs = rel x (max - min) of the layer's whole K or V array, all KV heads",
        ratio:
          "2 bytes a value (fp16) / stream bytes, container included; one stream per (layer, KV head) frame",
      },
      date: new Date().toISOString(),
      seconds: (performance.now() - t0) / 1000,
      sources: results,
    },
    null,
    2,
  ) + "\n",
);
console.log(`\nwrote ${out} (${elapsed()})`);
const broken = results.flatMap((r) =>
  r.codecs.filter((c) => c.bound_ok === false).map((c) => `${r.name} ${c.codec} ${c.kind} ${c.rel}`)
);
if (broken.length) {
  console.error(`error bound broken: ${broken.join("; ")}`);
  Deno.exit(1);
}
