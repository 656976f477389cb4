/**
 * Test helper: prompts through prefill → compression → the batched decode engine, the way
 * the services chain them, without NATS. Shared by the pipeline and decode engine tests.
 * @module
 */
import { assertEquals } from "@std/assert";
import { BlockStore } from "../blockstore/mod.ts";
import type { KvSettings } from "../handoff/contract.ts";
import type { Model } from "../model/mod.ts";
import { CompressionJob, cpuFrameEncoder } from "./compress_stage.ts";
import { DecodeEngine } from "./decode_engine.ts";
import { decodeEvictionOf } from "./decode_eviction.ts";
import { decodeLayerBundle } from "./decode_stage.ts";
import { runPrefill } from "./prefill_stage.ts";

/** Greedy tokens of each prompt (maxTokens[i] each), all decoded by one engine; asserts every block is freed. */
export async function generateThroughEngine(
  model: Model,
  prompts: string[],
  settings: KvSettings,
  maxTokens: number[],
): Promise<{ got: number[][]; engine: DecodeEngine }> {
  const c = model.config;
  const store = new BlockStore({
    nLayers: c.nLayers,
    nKvHeads: c.nKvHeads,
    headDim: c.headDim,
    blockSize: settings.blockSize,
    maxBlocks: 4096,
  });
  const engine = new DecodeEngine(model, store, { maxBatch: 8 });
  const got: number[][] = prompts.map(() => []);
  for (const [i, p] of prompts.entries()) {
    const ids = model.tokenizer.encode(p);
    const sampling = { maxTokens: maxTokens[i], temperature: 0, topP: 1 };
    const pre = await runPrefill(model, ids, { kv: settings, sampling, rng: Math.random });
    const out = await new CompressionJob(`s${i}`, settings, pre.kv).run(cpuFrameEncoder, () => {});
    const expect = { nLayers: c.nLayers, nKvHeads: c.nKvHeads, headDim: c.headDim, maxElements: 1 << 20 };
    const layers = out.encoded.map((b) => decodeLayerBundle(b, expect));
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
      { eviction: decodeEvictionOf(settings) },
    );
  }
  await engine.idle();
  assertEquals(store.stats().usedBlocks, 0, "every block freed");
  return { got, engine };
}
