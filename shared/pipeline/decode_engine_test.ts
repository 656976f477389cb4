import { assert, assertEquals } from "@std/assert";
import { STORIES260K } from "../../tests/_harness/paths.ts";
import { BlockStore } from "../blockstore/mod.ts";
import { DEFAULTS } from "../config/mod.ts";
import { Model } from "../model/mod.ts";
import { CompressionJob } from "./compress_stage.ts";
import { DecodeEngine } from "./decode_engine.ts";
import { decodeLayerBundle } from "./decode_stage.ts";
import { defaultKvSettings } from "./kv_settings.ts";
import { runPrefill } from "./prefill_stage.ts";

/** Runs prompts through prefill → evict (rate 2) → engine; returns each sequence's tokens. */
async function generateAll(model: Model, prompts: string[], maxTokens: number[]) {
  const settings = defaultKvSettings({ ...DEFAULTS.kv, codec: "zstd", evictionRate: 2, blockSize: 4 });
  const c = model.config;
  const store = new BlockStore({
    nLayers: c.nLayers,
    nKvHeads: c.nKvHeads,
    headDim: c.headDim,
    blockSize: 4,
    maxBlocks: 4096,
  });
  const engine = new DecodeEngine(model, store, { maxBatch: 8 });
  const got: number[][] = prompts.map(() => []);
  for (const [i, p] of prompts.entries()) {
    const ids = model.tokenizer.encode(p);
    const sampling = { maxTokens: maxTokens[i], temperature: 0, topP: 1 };
    const pre = await runPrefill(model, `s${i}`, ids, { kv: settings, sampling, rng: Math.random });
    const job = new CompressionJob(`s${i}`, settings);
    pre.bundles.forEach((b, j) => job.accept(j, b));
    const expect = { nLayers: c.nLayers, nKvHeads: c.nKvHeads, headDim: c.headDim, maxElements: 1 << 20 };
    const layers = job.finish().encoded.map((b) => decodeLayerBundle(b, expect));
    engine.add(
      `s${i}`,
      layers,
      { token: pre.firstToken, nPos: pre.nPos, promptLastToken: ids.at(-1) },
      sampling,
      {
        onToken: (id) => got[i].push(id),
        onDone: () => {},
        onError: (e) => {
          throw e;
        },
      },
    );
  }
  await engine.idle();
  assertEquals(store.stats().usedBlocks, 0, "every block freed");
  return { got, engine };
}

Deno.test("DecodeEngine on a model that keeps KV continues from it and gives the same tokens", async () => {
  const load = { modelPath: STORIES260K.model, tokenizerPath: STORIES260K.tokenizer };
  const plain = await Model.load(load);
  const kept = await Model.load({ ...load, keepKv: true });
  try {
    // Different lengths: the batch shrinks as sequences finish, so the engine gathers again.
    const prompts = ["Once upon a time", "The dog ran to the park and", "Lily had a red ball"];
    const maxTokens = [20, 8, 14];
    const a = await generateAll(plain, prompts, maxTokens);
    const b = await generateAll(kept, prompts, maxTokens);
    assertEquals(b.got, a.got);
    assertEquals(a.engine.keptSteps, 0);
    assert(b.engine.keptSteps > 0 && b.engine.keptSteps < b.engine.steps, `kept ${b.engine.keptSteps}`);
  } finally {
    await plain.close();
    await kept.close();
  }
});
