/**
 * `deno task eval:eviction [--model M --tokenizer T] [--prompts N] [--prompt-len L] [--steps S]
 *   [--block-size B] [--protected-window W] [--out F]`
 *
 * Accuracy of KV eviction against the uncompressed run, the way the KV-Compress paper
 * measures it: for each rate and policy (KV-Compress variable per-head rates, uniform rate per
 * head, recency), the prompt's KV goes through the real hand-off stages (metric from prefill
 * → plan → encoded bundles → decode → paged block store), then decoding is teacher-forced on
 * the uncompressed greedy continuation. Reported: greedy-token agreement (argmax equals the
 * uncompressed run's token) and mean KL(uncompressed ‖ evicted) of next-token distributions,
 * over `steps` tokens. Prompts are the real contexts in ../shared/kv-samples (their token ids).
 * Prints a table and writes JSON.
 * @module
 */
import { defaultOut, exitOnHelp } from "./_cli.ts";
import { parseArgs } from "node:util";
import { Model } from "../../shared/model/mod.ts";
import { argmax, klFromLogits } from "../../shared/model/sampling/mod.ts";
import { BlockStore } from "../../shared/blockstore/mod.ts";
import { CompressionJob, cpuFrameEncoder, type PrefillKv } from "../../shared/pipeline/compress_stage.ts";
import { decodeLayerBundle } from "../../shared/pipeline/decode_stage.ts";
import { runPrefill } from "../../shared/pipeline/prefill_stage.ts";
import type { EvictionPolicy, KvSettings } from "../../shared/handoff/contract.ts";
import { KV_SAMPLES_DIR, STORIES260K } from "../_harness/paths.ts";

exitOnHelp(import.meta.url);

const RATES = [1, 2, 4, 8, 16, 32, 64];
const POLICIES: EvictionPolicy[] = ["kvcompress", "uniform", "recency"];

/**
 * Teacher-forced decode over `tokens` (fed at positions nPos, nPos+1, ...) for `steps` steps;
 * where `tokens` runs out, the argmax is fed (the greedy reference run). Returns logits per step.
 */
async function forcedLogits(
  model: Model,
  prefill: PrefillKv,
  kv: KvSettings,
  nPos: number,
  tokens: number[],
  steps: number,
) {
  const c = model.config;
  const out = await new CompressionJob("eval", kv, prefill).run(cpuFrameEncoder, () => {});
  const expect = { nLayers: c.nLayers, nKvHeads: c.nKvHeads, headDim: c.headDim, maxElements: 1 << 24 };
  const layers = out.encoded.map((b) => decodeLayerBundle(b, expect));
  const store = new BlockStore({
    nLayers: c.nLayers,
    nKvHeads: c.nKvHeads,
    headDim: c.headDim,
    blockSize: kv.blockSize,
    maxBlocks: c.nLayers * c.nKvHeads * Math.ceil((nPos + steps + 1) / kv.blockSize),
  });
  store.addSequence("s", (l, h) => ({ keys: layers[l].heads[h].keys, values: layers[l].heads[h].values }));
  const blocksHeld = store.stats().usedBlocks;
  const logits: Float32Array[] = [];
  for (let i = 0; i < steps; i++) {
    let maxLen = 1;
    for (let l = 0; l < c.nLayers; l++) for (const n of store.lengths("s", l)) maxLen = Math.max(maxLen, n);
    const past = [];
    const pastLengths = [];
    for (let l = 0; l < c.nLayers; l++) {
      const g = store.gather(["s"], l, maxLen);
      past.push({ keys: g.keys, values: g.values });
      pastLengths.push(g.lengths);
    }
    const o = await model.decode({ tokens: [tokens[i]], positions: [nPos + i], past, pastLengths });
    for (let l = 0; l < c.nLayers; l++) store.append("s", l, o.newKeys[l], o.newValues[l]);
    logits.push(o.logits.slice());
    if (tokens.length === i + 1) tokens.push(argmax(o.logits));
  }
  return { logits, keptFraction: out.stats.keptFraction, blocksHeld };
}

if (import.meta.main) {
  const { values: v } = parseArgs({
    args: Deno.args,
    options: {
      model: { type: "string", default: STORIES260K.model },
      tokenizer: { type: "string", default: STORIES260K.tokenizer },
      prompts: { type: "string", default: "6" },
      "prompt-len": { type: "string", default: "384" },
      steps: { type: "string", default: "64" },
      "block-size": { type: "string", default: "4" },
      // 0: the committed results (results/eviction_eval.json) were measured before pooling existed.
      "max-pool": { type: "string", default: "0" },
      "protected-window": { type: "string", default: "8" },
      out: { type: "string", default: defaultOut("eviction_eval.json") },
    },
  });
  const model = await Model.load({ modelPath: v.model, tokenizerPath: v.tokenizer });
  const steps = Number(v.steps), promptLen = Number(v["prompt-len"]);
  const samples: number[][] = [];
  for (let i = 0; i < Number(v.prompts); i++) {
    const s = JSON.parse(await Deno.readTextFile(`${KV_SAMPLES_DIR}/stories260K/sample-0${i}.json`));
    samples.push((s.tokens as number[]).slice(0, promptLen));
  }
  const base: KvSettings = {
    codec: "raw",
    errorBound: 0,
    errorMode: "abs",
    indexShare: 1,
    frames: "head",
    eviction: "kvcompress",
    evictionRate: 1,
    protectedWindow: Number(v["protected-window"]),
    observationWindow: 32,
    maxPool: Number(v["max-pool"]),
    sink: 4,
    blockSize: Number(v["block-size"]),
    headFloor: Number(v["block-size"]),
  };
  const rows: Record<string, unknown>[] = [];
  const acc = new Map<string, { agree: number; kl: number; kept: number; n: number; blocks: number }>();
  for (const ids of samples) {
    const pre = await runPrefill(model, ids, {
      kv: base,
      sampling: { maxTokens: steps, temperature: 0, topP: 1 },
      rng: Math.random,
    });
    // The uncompressed greedy continuation, and its logits, are the reference.
    const ref: number[] = [pre.firstToken];
    const refRun = await forcedLogits(model, pre.kv, base, pre.nPos, ref, steps);
    for (const policy of POLICIES) {
      for (const rate of RATES) {
        const kv = { ...base, eviction: policy, evictionRate: rate };
        const r = await forcedLogits(model, pre.kv, kv, pre.nPos, ref.slice(0, steps), steps);
        let agree = 0, k = 0;
        for (let i = 0; i < steps; i++) {
          if (argmax(r.logits[i]) === ref[i + 1]) agree++;
          k += klFromLogits(refRun.logits[i], r.logits[i]);
        }
        const key = `${policy}@${rate}`;
        const a = acc.get(key) ?? { agree: 0, kl: 0, kept: 0, n: 0, blocks: 0 };
        a.agree += agree / steps;
        a.kl += k / steps;
        a.kept += r.keptFraction;
        a.blocks += r.blocksHeld;
        a.n++;
        acc.set(key, a);
      }
    }
  }
  console.log(
    `model ${model.config.name}, ${samples.length} prompts of ${promptLen} tokens, ${steps} teacher-forced steps`,
  );
  console.log("policy      rate  kept    agree    KL(nats)  blocks");
  for (const policy of POLICIES) {
    for (const rate of RATES) {
      const a = acc.get(`${policy}@${rate}`)!;
      const row = {
        policy,
        rate,
        kept_fraction: a.kept / a.n,
        agreement: a.agree / a.n,
        kl: a.kl / a.n,
        blocks_held: a.blocks / a.n,
      };
      rows.push(row);
      console.log(
        `${policy.padEnd(11)} ${String(rate).padStart(4)}  ${row.kept_fraction.toFixed(3)}  ${
          (100 * row.agreement).toFixed(1).padStart(6)
        }%  ${row.kl.toFixed(4).padStart(8)}  ${row.blocks_held.toFixed(0).padStart(6)}`,
      );
    }
  }
  await model.close();
  await Deno.mkdir(new URL(".", `file://${Deno.cwd()}/${v.out}`), { recursive: true }).catch(() => {});
  await Deno.writeTextFile(
    v.out,
    JSON.stringify({ model: model.config.name, promptLen, steps, base, rows }, null, 2),
  );
  console.log(`wrote ${v.out}`);
}
