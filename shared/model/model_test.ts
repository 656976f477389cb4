import { assert, assertEquals } from "@std/assert";
import { STORIES260K, STORIES260K_GREEDY } from "../../tests/_harness/paths.ts";
import { generateDense, Model } from "./mod.ts";

const model = await Model.load({ modelPath: STORIES260K.model, tokenizerPath: STORIES260K.tokenizer });

Deno.test({
  name: "generateDense() greedy from BOS alone reproduces the known stories260K text",
  sanitizeResources: false,
  fn: async () => {
    // README: greedy decoding from BOS alone "yields" the text; generation goes on past it,
    // so the known text must be a prefix of what comes out.
    const ids = await generateDense(model, model.tokenizer.encode(""), { maxTokens: 64 });
    const text = model.tokenizer.decode(ids);
    assert(text.length >= STORIES260K_GREEDY.length, `only ${ids.length} tokens: ${text}`);
    assertEquals(text.slice(0, STORIES260K_GREEDY.length), STORIES260K_GREEDY);
  },
});
