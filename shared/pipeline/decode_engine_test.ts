import { assert, assertEquals } from "@std/assert";
import { STORIES260K } from "../../tests/_harness/paths.ts";
import { DEFAULTS } from "../config/mod.ts";
import { Model } from "../model/mod.ts";
import { generateThroughEngine } from "./engine_testing.ts";
import { defaultKvSettings } from "./kv_settings.ts";

/** Runs prompts through prefill → evict (rate 2) → engine; returns each sequence's tokens. */
function generateAll(model: Model, prompts: string[], maxTokens: number[]) {
  const settings = defaultKvSettings({ ...DEFAULTS.kv, codec: "zstd", evictionRate: 2, blockSize: 4 });
  return generateThroughEngine(model, prompts, settings, maxTokens);
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
