/**
 * `deno task bench:decode-throughput [--jobs N] [--out FILE] [--rates 1,2,4,8,16,32,64]
 *   [--budget-blocks B] [--prompt-len P] [--gen G] [--max-seqs S] [--device cpu|webgpu|auto]
 *   [--threads T] [--protected-window W] [--head-floor F]`
 *
 * Decode throughput at a fixed KV budget, the KV-Compress paper's serving experiment on
 * kvrelay-tiny: for each rate, with and without decode-time eviction, as many sequences as the
 * budget admits are handed to one `DecodeEngine` (the real admission: each reserves what it may
 * come to hold, and `unavailable` stops the filling), then all generate `--gen` tokens
 * (ignoring EOS) in one batch. Without decode-time eviction, a sequence's prompt is evicted at
 * the hand-off but every generated KV stays, so it reserves `P/R + G` KVs a head; with it, the
 * rate holds for the whole generation and it reserves about `(P + G)/R`. Reported per cell:
 * sequences held, generated tokens/s over the run, the speedup against rate 1 without
 * eviction measured in the same run, the peak blocks used and the achieved kept fraction.
 *
 * Prompts: `--prompt-len` tokens of passkey filler (infra/train/data.py), 8 distinct ones
 * reused. Eviction: KV-Compress with protected window 8, w = 8, no sink, a one-block floor
 * (flags), codec `raw`. Budget: `--budget-blocks` blocks of 16 KVs of one head (default:
 * what 4 sequences need at rate 1 without eviction). Cells run in `--jobs` child processes
 * at once; timings from parallel cells share the machine, so `--jobs 1` gives the cleanest
 * tokens/s (held counts do not depend on it). The last child also measures what the attention
 * metric output (what decode-time eviction ranks by) costs a decode step: the same steps on the
 * model built with and without it (`--no-cost` skips it). Prints the tables and writes JSON
 * (`--out`, default out/bench/decode_throughput_<machine>.json); `deno task plots` draws it from
 * tests/bench/results/.
 * @module
 */
import { parseArgs } from "node:util";
import { EMBEDDED_MODEL_DIR, loadConfig } from "../../shared/config/mod.ts";
import type { DeviceChoice } from "../../shared/config/mod.ts";
import { KvrelayError } from "../../shared/errors.ts";
import { Model } from "../../shared/model/mod.ts";
import { BlockStore } from "../../shared/blockstore/mod.ts";
import { CompressionJob, cpuFrameEncoder } from "../../shared/pipeline/compress_stage.ts";
import {
  bundleExpectation,
  type DecodedLayer,
  decodeLayerBundle,
} from "../../shared/pipeline/decode_stage.ts";
import { DecodeEngine } from "../../shared/pipeline/decode_engine.ts";
import { decodeEvictionOf } from "../../shared/pipeline/decode_eviction.ts";
import { defaultKvSettings, resolveKvSettings } from "../../shared/pipeline/kv_settings.ts";
import { runPrefill } from "../../shared/pipeline/prefill_stage.ts";
import type { PrefillKv } from "../../shared/pipeline/compress_stage.ts";
import { REPO_DIR } from "../_harness/paths.ts";
import { runChild } from "./_child.ts";
import { defaultOut, exitOnHelp } from "./_cli.ts";
import { machineInfo, machineLabel } from "./_machine.ts";

const BLOCK = 16;
const PROMPTS = 8;

interface Cell {
  rate: number;
  decodeEviction: boolean;
}

interface CellResult extends Cell {
  sequences: number;
  tokens: number;
  seconds: number;
  tokensPerS: number;
  steps: number;
  peakBlocks: number;
  keptFraction: number;
  device: string;
  note?: string;
}

async function prompts(model: Model, len: number): Promise<number[][]> {
  const py = `
import json, random, sys
sys.path.insert(0, "${REPO_DIR}/infra/train")
import data
print(json.dumps([data.passkey_item(random.Random(700 + i), [], ${
    len * 5
  }, True, 0.5)[0] for i in range(${PROMPTS})]))
`;
  const gen = await new Deno.Command("python3", { args: ["-c", py], stdout: "piped", stderr: "inherit" })
    .output();
  if (gen.code !== 0) throw new Error("python3 could not generate the prompts");
  const texts = JSON.parse(new TextDecoder().decode(gen.stdout)) as string[];
  return texts.map((t) => model.tokenizer.encode(t).slice(0, len));
}

async function runCell(
  model: Model,
  cell: Cell,
  pre: { ids: number[]; kv: PrefillKv; first: number }[],
  o: { budget: number; gen: number; maxSeqs: number; kvIn: Record<string, unknown> },
): Promise<CellResult> {
  const c = model.config;
  const kv = resolveKvSettings(defaultKvSettings(loadConfig({}).kv), {
    codec: "raw",
    block_size: BLOCK,
    ...o.kvIn,
    ...(cell.rate > 1 ? { eviction: "kvcompress", eviction_rate: cell.rate } : {}),
  });
  const expect = bundleExpectation(c);
  const bundles: DecodedLayer[][] = [];
  let kept = 0;
  for (const [i, p] of pre.entries()) {
    const out = await new CompressionJob(`p${i}`, kv, p.kv).run(cpuFrameEncoder, () => {});
    bundles.push(out.encoded.map((b) => decodeLayerBundle(b, expect)));
    kept += out.stats.keptFraction / pre.length;
  }
  const store = new BlockStore({
    nLayers: c.nLayers,
    nKvHeads: c.nKvHeads,
    headDim: c.headDim,
    blockSize: BLOCK,
    maxBlocks: o.budget,
  });
  const engine = new DecodeEngine(model, store, { maxBatch: o.maxSeqs });
  const eviction = cell.decodeEviction ? decodeEvictionOf(kv) : undefined;
  const sampling = { maxTokens: o.gen, temperature: 0, topP: 1, ignoreEos: true };
  let tokens = 0, peakBlocks = 0, failed: KvrelayError | undefined;
  const sink = {
    onToken: () => {
      tokens++;
      peakBlocks = Math.max(peakBlocks, store.stats().usedBlocks);
    },
    onDone: () => {},
    onError: (e: KvrelayError) => failed = e,
  };
  // Fill: the engine starts a sequence as soon as it is added, so the loop is held off by
  // adding them all before yielding to it.
  let n = 0;
  const t0 = performance.now();
  for (; n < o.maxSeqs; n++) {
    const p = pre[n % pre.length];
    try {
      engine.add(`s${n}`, bundles[n % pre.length], { token: p.first, nPos: p.ids.length }, sampling, sink, {
        eviction,
      });
    } catch (e) {
      if (e instanceof KvrelayError && e.code === "unavailable") break;
      throw e;
    }
  }
  await engine.idle();
  const seconds = (performance.now() - t0) / 1000;
  return {
    ...cell,
    sequences: n,
    tokens,
    seconds,
    tokensPerS: tokens / seconds,
    steps: engine.steps,
    peakBlocks,
    keptFraction: kept,
    device: model.device,
    note: failed ? `${failed.code}: ${failed.message}` : undefined,
  };
}

interface CostRow {
  kind: "attention-cost";
  batch: number;
  past: number;
  msWith: number;
  msWithout: number;
  overhead: number;
}

/**
 * What the attention metric output costs a decode step: medians of the same steps on the model
 * with and without it, interleaved in alternating order, at a few (batch, past) shapes.
 */
async function attentionCost(
  opts: { modelPath: string; device: DeviceChoice; threads: number },
): Promise<CostRow[]> {
  const withA = await Model.load({ ...opts, attention: true });
  const without = await Model.load({ ...opts, attention: false });
  const rows: CostRow[] = [];
  try {
    const c = withA.config;
    for (const [B, P] of [[1, 1024], [8, 512], [32, 256], [64, 1024]]) {
      const past = Array.from({ length: c.nLayers }, (_, l) => {
        const x = new Float32Array(B * c.nKvHeads * P * c.headDim).map((_, i) => Math.sin(i + l) * 0.5);
        return { keys: x, values: x };
      });
      const batch = {
        tokens: Array(B).fill(5),
        positions: Array(B).fill(P),
        past,
        pastLengths: past.map(() => new Int32Array(B * c.nKvHeads).fill(P)),
      };
      const times: [number[], number[]] = [[], []];
      // alternating which model goes first, so neither gets the other's warm caches
      for (let i = 0; i < 50; i++) {
        for (const k of i % 2 ? [0, 1] : [1, 0]) {
          const t0 = performance.now();
          await [withA, without][k].decode(batch);
          if (i >= 10) times[k].push(performance.now() - t0);
        }
      }
      const med = (x: number[]) => x.sort((a, b) => a - b)[x.length >> 1];
      const [a, b] = [med(times[0]), med(times[1])];
      rows.push({ kind: "attention-cost", batch: B, past: P, msWith: a, msWithout: b, overhead: a / b - 1 });
    }
  } finally {
    await withA.close();
    await without.close();
  }
  return rows;
}

function cells(rates: number[]): Cell[] {
  return rates.flatMap((rate) =>
    rate === 1 ? [{ rate, decodeEviction: false }] : [
      { rate, decodeEviction: false },
      { rate, decodeEviction: true },
    ]
  );
}

function table(rows: CellResult[]): void {
  const base = rows.find((r) => r.rate === 1 && !r.decodeEviction);
  console.log("rate  decode-evict  held  tokens/s  speedup  steps  peak blocks  kept");
  for (const r of rows) {
    console.log(
      `${String(r.rate).padStart(4)}  ${(r.decodeEviction ? "yes" : "no").padEnd(12)}  ${
        String(r.sequences).padStart(4)
      }  ${r.tokensPerS.toFixed(0).padStart(8)}  ${
        base ? (r.tokensPerS / base.tokensPerS).toFixed(2).padStart(6) : "   n/a"
      }x  ${String(r.steps).padStart(5)}  ${String(r.peakBlocks).padStart(11)}  ${r.keptFraction.toFixed(3)}${
        r.note ? `  ${r.note}` : ""
      }`,
    );
  }
}

if (import.meta.main) {
  exitOnHelp(import.meta.url);
  const { values: v } = parseArgs({
    args: Deno.args,
    options: {
      model: { type: "string", default: EMBEDDED_MODEL_DIR },
      device: { type: "string", default: "cpu" },
      threads: { type: "string", default: "1" },
      rates: { type: "string", default: "1,2,4,8,16,32,64" },
      "budget-blocks": { type: "string" },
      "prompt-len": { type: "string", default: "1024" },
      gen: { type: "string", default: "512" },
      "max-seqs": { type: "string", default: "256" },
      "protected-window": { type: "string", default: "8" },
      "head-floor": { type: "string", default: "16" },
      jobs: { type: "string", default: "1" },
      out: { type: "string" },
      child: { type: "boolean", default: false },
      shard: { type: "string", default: "0" },
      "no-cost": { type: "boolean", default: false },
    },
  });
  const rates = v.rates.split(",").map(Number);
  const all = cells(rates);
  const promptLen = Number(v["prompt-len"]), gen = Number(v.gen), jobs = Number(v.jobs);
  const heads = 8 * 2; // kvrelay-tiny: 8 layers, 2 KV heads (checked in the child)
  const budget = v["budget-blocks"]
    ? Number(v["budget-blocks"])
    : 4 * heads * Math.ceil((promptLen + gen) / BLOCK);
  if (v.child) {
    const model = await Model.load({
      modelPath: v.model,
      device: v.device as DeviceChoice,
      threads: Number(v.threads),
    });
    try {
      if (model.config.nLayers * model.config.nKvHeads !== heads) throw new Error("not kvrelay-tiny's shape");
      const ids = await prompts(model, promptLen);
      const kvIn = {
        protected_window: Number(v["protected-window"]),
        observation_window: 8,
        sink: 0,
        head_floor: Number(v["head-floor"]),
      };
      const base = resolveKvSettings(defaultKvSettings(loadConfig({}).kv), { codec: "raw", ...kvIn });
      const pre = [];
      for (const p of ids) {
        const r = await runPrefill(model, p, {
          kv: base,
          sampling: { maxTokens: gen, temperature: 0, topP: 1 },
          rng: Math.random,
        });
        pre.push({ ids: p, kv: r.kv, first: r.firstToken });
      }
      for (let i = Number(v.shard); i < all.length; i += jobs) {
        const r = await runCell(model, all[i], pre, { budget, gen, maxSeqs: Number(v["max-seqs"]), kvIn });
        console.log(JSON.stringify(r));
      }
    } finally {
      await model.close();
    }
    if (Number(v.shard) === jobs - 1 && !v["no-cost"]) {
      const opts = { modelPath: v.model, device: v.device as DeviceChoice, threads: Number(v.threads) };
      for (const r of await attentionCost(opts)) console.log(JSON.stringify(r));
    }
  } else {
    const t0 = performance.now();
    const pass = Deno.args.filter((a, i, xs) =>
      !["--jobs", "--out"].includes(a) && !["--jobs", "--out"].includes(xs[i - 1])
    );
    const parts = await Promise.all(Array.from({ length: jobs }, async (_, shard) => {
      const r = await runChild<CellResult | CostRow>(
        [
          new URL(import.meta.url).pathname,
          ...pass,
          "--child",
          "--jobs",
          String(jobs),
          "--shard",
          String(shard),
        ],
        {
          timeoutS: 4 * 3600,
          onLine: (l) => {
            if (!("kind" in l)) {
              console.error(`rate ${l.rate} decode-evict ${l.decodeEviction}: ${l.sequences} held`);
            }
          },
        },
      );
      if (r.note) console.error(`shard ${shard}: ${r.note}`);
      return r.lines;
    }));
    const lines = parts.flat();
    const cost = lines.filter((l): l is CostRow => "kind" in l);
    const rows = lines.filter((l): l is CellResult => !("kind" in l))
      .sort((a, b) => a.rate - b.rate || Number(a.decodeEviction) - Number(b.decodeEviction));
    table(rows);
    if (cost.length) {
      console.log("\nattention metric output: decode step, median ms");
      console.log("batch  past   with  without  overhead");
      for (const r of cost) {
        console.log(
          `${String(r.batch).padStart(5)}  ${String(r.past).padStart(4)}  ${
            r.msWith.toFixed(2).padStart(5)
          }  ${r.msWithout.toFixed(2).padStart(7)}  ${(100 * r.overhead).toFixed(1).padStart(6)}%`,
        );
      }
    }
    const base = rows.find((r) => r.rate === 1 && !r.decodeEviction);
    const label = machineLabel();
    const out = v.out ?? defaultOut(`decode_throughput_${label}.json`);
    const bytesFp16 = budget * 2 * BLOCK * 64 * 2; // K and V, head_dim 64, 2 bytes a value
    await Deno.writeTextFile(
      out,
      JSON.stringify(
        {
          bench: "decode_throughput",
          model: "kvrelay-tiny",
          machine: machineInfo(),
          device: v.device,
          jobs,
          seconds: Math.round((performance.now() - t0) / 1000),
          budget: { blocks: budget, blockSize: BLOCK, fp16MiB: bytesFp16 / 2 ** 20 },
          promptLen,
          gen,
          maxSeqs: Number(v["max-seqs"]),
          eviction: {
            policy: "kvcompress",
            protected_window: Number(v["protected-window"]),
            observation_window: 8,
            sink: 0,
            head_floor: Number(v["head-floor"]),
          },
          baseline: "rate 1 without decode-time eviction, same run",
          rows: rows.map((r) => ({ ...r, speedup: base ? r.tokensPerS / base.tokensPerS : null })),
          attentionCost: cost,
        },
        null,
        2,
      ) + "\n",
    );
    console.log(`wrote ${out} (deno task plots draws it)`);
  }
}
