/**
 * Decode batch capacity in a fixed KV memory budget, per KV-Compress rate.
 *
 * For each rate in {1, 2, 4, 8, 16, 32, 64}, sequences are planned with `planKvCompress`,
 * their survivors gathered with `applyPlan`, and stored in a real `BlockStore` until it
 * throws `OutOfBlocksError`; the count that fit is the capacity. Two workloads:
 * - `stories260K`: the real KV samples of ../shared/kv-samples (5 layers, 4 KV heads,
 *   512 positions, head_dim 8), metric from the real keys (each key as its own query);
 * - `llama3-8b-shape`: 32 layers, 8 KV heads, head_dim 128, a synthetic heavy-tailed
 *   metric whose scale varies per head, zero K/V (capacity depends only on block counts).
 * The protected window (default 64) and sink (4) cap the rate a prompt can reach; the
 * table shows the rate achieved.
 *
 * Decode tokens/s at each capacity needs the model runtime: pass a `DecodeProbe` to
 * `runDecodeCapacity` (see `DecodeProbe`); without one the JSON carries `null`.
 *
 * Usage: deno run -A tests/bench/decode_capacity.ts [--budget-mib N] [--prompt N]
 *        [--protected-window N] [--stories-budget-mib N] [--out PATH]
 * Each row also times the planning of one sequence (`planMsPerSeq`): for the Llama shape that is
 * `planKvCompress` over 32 layers x 8 heads x the prompt, whose budget is 100 ms.
 * Prints a table, writes out/bench/decode_capacity.json (or PATH).
 * @module
 */
import { applyPlan, attentionMetric, type EvictionPlan, planKvCompress } from "../../shared/eviction/mod.ts";
import { blocksForBytes, BlockStore, bytesPerBlock, OutOfBlocksError } from "../../shared/blockstore/mod.ts";
import { readNpyF32 } from "../../shared/eviction/_testing.ts";
import { KV_SAMPLES_DIR, STORIES260K } from "../_harness/paths.ts";
import { defaultOut, exitOnHelp } from "./_cli.ts";
import { Model } from "../../shared/model/mod.ts";

export const RATES = [1, 2, 4, 8, 16, 32, 64];

/**
 * Hook for the decode half of the benchmark: given a store filled to capacity and the ids
 * in it, run decode steps over the whole batch and return tokens per second. The model
 * runtime (shared/model, shared/pipeline/decode_engine.ts) provides one.
 */
export type DecodeProbe = (
  store: BlockStore,
  seqIds: string[],
) => Promise<{ tokensPerSecond: number; paddedShare: number; anyLayerPaddedShare: number }>;

/** One sequence's per-layer survivors, ready for `addSequence`. */
interface SeqKv {
  plan: EvictionPlan;
  layers: { keys: Float32Array[]; values: Float32Array[] }[];
}

interface Workload {
  name: string;
  nLayers: number;
  nKvHeads: number;
  headDim: number;
  nPos: number;
  budgetBytes: number;
  /** Distinct sequences to cycle through at this rate. */
  sequences(rate: number): SeqKv[];
}

export interface CapacityRow {
  workload: string;
  rate: number;
  achievedRate: number;
  keptFraction: number;
  blocksPerSeq: number;
  sequences: number;
  vsUncompressed: number;
  bytesUsed: number;
  bytesCapacity: number;
  decodeTokensPerSecond: number | null;
  /**
   * Share of the decode step's past rows that are padding, each layer padded to its longest head as
   * `DecodeEngine` gathers: KV-Compress's uneven per-head rates save memory but not this attention work.
   */
  paddedShare: number | null;
  /** The same had every layer been padded to the longest head of any layer (the engine's former gather). */
  anyLayerPaddedShare: number | null;
  /** Wall time to plan (and, for real KV, gather) one sequence at this rate: planKvCompress's cost. */
  planMsPerSeq: number;
}

const BLOCK_SIZE = 16;

function fill(
  store: BlockStore,
  w: Workload,
  rate: number,
): { ids: string[]; seqs: SeqKv[]; planMs: number } {
  const t0 = performance.now();
  const seqs = w.sequences(rate);
  const planMs = (performance.now() - t0) / seqs.length;
  const ids: string[] = [];
  for (let i = 0;; i++) {
    const s = seqs[i % seqs.length];
    try {
      store.addSequence(`seq-${i}`, (l, h) => ({ keys: s.layers[l].keys[h], values: s.layers[l].values[h] }));
    } catch (e) {
      if (e instanceof OutOfBlocksError) break;
      throw e;
    }
    ids.push(`seq-${i}`);
  }
  return { ids, seqs, planMs };
}

/** Runs every rate of a workload; `probe`, when given, measures decode at each capacity. */
export async function runDecodeCapacity(w: Workload, probe?: DecodeProbe): Promise<CapacityRow[]> {
  const rows: CapacityRow[] = [];
  const maxBlocks = blocksForBytes(w.budgetBytes, { blockSize: BLOCK_SIZE, headDim: w.headDim });
  const store = new BlockStore({ ...w, blockSize: BLOCK_SIZE, maxBlocks });
  for (const rate of RATES) {
    const { ids, seqs, planMs } = fill(store, w, rate);
    const kept = seqs.reduce((a, s) => a + s.plan.keptCount, 0) / seqs.length;
    const st = store.stats();
    const row: CapacityRow = {
      workload: w.name,
      rate,
      achievedRate: seqs[0].plan.totalCount / kept,
      keptFraction: kept / seqs[0].plan.totalCount,
      blocksPerSeq: ids.length ? st.usedBlocks / ids.length : NaN,
      sequences: ids.length,
      vsUncompressed: ids.length / (rows[0]?.sequences ?? ids.length),
      bytesUsed: st.bytesUsed,
      bytesCapacity: st.bytesCapacity,
      ...(probe && ids.length
        ? await probe(store, ids).then((p) => ({
          decodeTokensPerSecond: p.tokensPerSecond,
          paddedShare: p.paddedShare,
          anyLayerPaddedShare: p.anyLayerPaddedShare,
        }))
        : { decodeTokensPerSecond: null, paddedShare: null, anyLayerPaddedShare: null }),
      planMsPerSeq: planMs,
    };
    rows.push(row);
    for (const id of ids) store.free(id);
    if (store.stats().usedBlocks !== 0) throw new Error("decode_capacity: blocks leaked between rates");
  }
  return rows;
}

// ---- workloads ----------------------------------------------------------------------

/** `[layer, pos, head, hd]` to per-layer `[head, pos, hd]`. */
function toLayers(t: { shape: number[]; data: Float32Array }): Float32Array[] {
  const [nL, nP, nH, hd] = t.shape;
  return Array.from({ length: nL }, (_, l) => {
    const out = new Float32Array(nH * nP * hd);
    for (let p = 0; p < nP; p++) {
      for (let h = 0; h < nH; h++) {
        out.set(
          t.data.subarray(((l * nP + p) * nH + h) * hd, ((l * nP + p) * nH + h + 1) * hd),
          (h * nP + p) * hd,
        );
      }
    }
    return out;
  });
}

function storiesWorkload(budgetBytes: number, protectedWindow: number): Workload {
  const samples = [0, 1, 2, 3, 4, 5].map((i) => {
    const base = `${KV_SAMPLES_DIR}/stories260K/sample-0${i}`;
    const k = readNpyF32(`${base}.k.npy`), v = readNpyF32(`${base}.v.npy`);
    const [nLayers, nPos, nKvHeads, headDim] = k.shape;
    const keys = toLayers(k), values = toLayers(v);
    const metric = new Float32Array(nLayers * nKvHeads * nPos);
    const w = 32;
    for (let l = 0; l < nLayers; l++) {
      const q = new Float32Array(nKvHeads * w * headDim);
      for (let h = 0; h < nKvHeads; h++) {
        q.set(
          keys[l].subarray((h * nPos + nPos - w) * headDim, (h * nPos + nPos) * headDim),
          h * w * headDim,
        );
      }
      metric.set(
        attentionMetric(q, keys[l], { nHeads: nKvHeads, nKvHeads, nPos, headDim }),
        l * nKvHeads * nPos,
      );
    }
    return { shape: { nLayers, nKvHeads, nPos }, headDim, keys, values, metric };
  });
  const s0 = samples[0];
  return {
    name: "stories260K",
    ...s0.shape,
    headDim: s0.headDim,
    budgetBytes,
    sequences: (rate) =>
      samples.map((s) => {
        const plan = planKvCompress(s.metric, s.shape, { rate, blockSize: BLOCK_SIZE, protectedWindow });
        const layers = s.keys.map((k, l) => applyPlan({ keys: k, values: s.values[l] }, plan, l, s.headDim));
        return { plan, layers };
      }),
  };
}

function syntheticWorkload(budgetBytes: number, nPos: number, protectedWindow: number): Workload {
  const shape = { nLayers: 32, nKvHeads: 8, nPos };
  const headDim = 128;
  const zeros = new Float32Array(nPos * headDim);
  const metrics = [1, 2, 3, 4].map((seed) => {
    let s = seed;
    const rnd = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
    const metric = new Float32Array(32 * 8 * nPos);
    for (let h = 0; h < 32 * 8; h++) {
      const scale = 10 ** (rnd() * 3);
      for (let p = 0; p < nPos; p++) metric[h * nPos + p] = rnd() ** 6 * scale;
    }
    return metric;
  });
  return {
    name: "llama3-8b-shape",
    ...shape,
    headDim,
    budgetBytes,
    sequences: (rate) =>
      metrics.map((metric) => {
        const plan = planKvCompress(metric, shape, { rate, blockSize: BLOCK_SIZE, protectedWindow });
        const layers = Array.from({ length: 32 }, (_, l) => ({
          keys: plan.kept.slice(l * 8, l * 8 + 8).map((k) => zeros.subarray(0, k.length * headDim)),
          values: plan.kept.slice(l * 8, l * 8 + 8).map((k) => zeros.subarray(0, k.length * headDim)),
        }));
        return { plan, layers };
      }),
  };
}

// ---- main ---------------------------------------------------------------------------

function flag(name: string, dflt: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(Deno.args[i + 1]);
  if (!Number.isFinite(v) || v < 0) throw new RangeError(`--${name} ${Deno.args[i + 1]}`);
  return v;
}

function printTable(rows: CapacityRow[]): void {
  const head = [
    "workload",
    "rate",
    "achieved",
    "kept",
    "blocks/seq",
    "seqs",
    "x uncompr.",
    "MiB used",
    "tok/s",
    "padding",
    "any layer",
    "plan ms",
  ];
  const body = rows.map((r) => [
    r.workload,
    String(r.rate),
    r.achievedRate.toFixed(2),
    r.keptFraction.toFixed(4),
    r.blocksPerSeq.toFixed(0),
    String(r.sequences),
    r.vsUncompressed.toFixed(2),
    (r.bytesUsed / 2 ** 20).toFixed(1),
    r.decodeTokensPerSecond === null ? "-" : r.decodeTokensPerSecond.toFixed(1),
    r.paddedShare === null ? "-" : r.paddedShare.toFixed(2),
    r.anyLayerPaddedShare === null ? "-" : r.anyLayerPaddedShare.toFixed(2),
    r.planMsPerSeq.toFixed(1),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  for (const line of [head, widths.map((w) => "-".repeat(w)), ...body]) {
    console.log(line.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  "));
  }
}

if (import.meta.main) {
  exitOnHelp(import.meta.url);
  const protectedWindow = flag("protected-window", 64);
  const prompt = flag("prompt", 4096);
  const budgetMiB = flag("budget-mib", 1024);
  const storiesMiB = flag("stories-budget-mib", 16);
  const t0 = performance.now();
  // Decode tokens/s at each capacity: one decode step for every resident sequence (in
  // batches of up to 128), over each head's own surviving KVs, on the real model.
  const model = await Model.load({ modelPath: STORIES260K.model, tokenizerPath: STORIES260K.tokenizer });
  const probe: DecodeProbe = async (store, seqIds) => {
    const c = model.config;
    const steps = 5;
    let tokens = 0, usedRows = 0, paddedRows = 0, anyLayerRows = 0;
    let t = performance.now();
    for (let s = -1; s < steps; s++) {
      if (s === 0) (t = performance.now(), tokens = 0); // step -1 warms up
      for (let i = 0; i < seqIds.length; i += 128) {
        const ids = seqIds.slice(i, i + 128);
        // each layer padded to its own longest head, as DecodeEngine gathers
        const maxLens = Array.from({ length: c.nLayers }, (_, l) => {
          let m = 1;
          for (const id of ids) for (const n of store.lengths(id, l)) m = Math.max(m, n);
          return m;
        });
        const past = [], pastLengths = [];
        for (let l = 0; l < c.nLayers; l++) {
          const g = store.gather(ids, l, maxLens[l]);
          past.push({ keys: g.keys, values: g.values });
          pastLengths.push(g.lengths);
          for (const n of g.lengths) usedRows += n;
          paddedRows += g.lengths.length * maxLens[l];
          anyLayerRows += g.lengths.length * Math.max(...maxLens);
        }
        await model.decode({ tokens: ids.map(() => 300), positions: ids.map(() => 511), past, pastLengths });
        tokens += ids.length;
      }
    }
    return {
      tokensPerSecond: tokens / ((performance.now() - t) / 1000),
      paddedShare: 1 - usedRows / paddedRows,
      anyLayerPaddedShare: 1 - usedRows / anyLayerRows,
    };
  };
  const rows = [
    ...(await runDecodeCapacity(storiesWorkload(storiesMiB * 2 ** 20, protectedWindow), probe)),
    ...(await runDecodeCapacity(syntheticWorkload(budgetMiB * 2 ** 20, prompt, protectedWindow))),
  ];
  await model.close();
  printTable(rows);
  const out = {
    bench: "decode_capacity",
    blockSize: BLOCK_SIZE,
    bytesPerBlock: {
      stories260K: bytesPerBlock({ blockSize: BLOCK_SIZE, headDim: 8 }),
      "llama3-8b-shape": bytesPerBlock({ blockSize: BLOCK_SIZE, headDim: 128 }),
    },
    protectedWindow,
    sink: 4,
    budgets: { stories260K: storiesMiB * 2 ** 20, "llama3-8b-shape": budgetMiB * 2 ** 20 },
    promptLength: { stories260K: 512, "llama3-8b-shape": prompt },
    decodeTokensPerSecond:
      "stories260K rows: one decode step of every resident sequence (batches of 128) on this CPU, 1 ORT thread; Llama-shape rows: null (no such model here)",
    seconds: (performance.now() - t0) / 1000,
    rows,
  };
  const i = Deno.args.indexOf("--out");
  const path = i >= 0 ? Deno.args[i + 1] : defaultOut("decode_capacity.json");
  await Deno.writeTextFile(path, JSON.stringify(out, null, 2) + "\n");
  console.log(`wrote ${path} (${out.seconds.toFixed(1)} s)`);
}
