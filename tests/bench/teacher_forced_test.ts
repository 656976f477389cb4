import { assert, assertAlmostEquals, assertEquals } from "@std/assert";
import { STORIES260K } from "../_harness/paths.ts";
import { Model } from "../../shared/model/mod.ts";
import { type HeadCache, nllOf, teacherForcedNll } from "./teacher_forced.ts";

Deno.test("teacherForcedNll() equals the NLL from prefill's last-position logits, batched and from a cache", async () => {
  const model = await Model.load({ modelPath: STORIES260K.model, tokenizerPath: STORIES260K.tokenizer });
  try {
    const { nKvHeads: H, headDim: hd } = model.config;
    const a = model.tokenizer.encode("Once upon a time, there was a little dog named Max.");
    const b = model.tokenizer.encode("Lily saw a big red ball in the park.");
    const expected = async (ids: number[]) => {
      const out: number[] = [];
      for (let t = 0; t + 1 < ids.length; t++) {
        out.push(nllOf((await model.prefill(ids.slice(0, t + 1))).logits, ids[t + 1]));
      }
      return out;
    };
    const [ea, eb] = [await expected(a), await expected(b)];
    // 2 sequences of different lengths in one batch, past capacity growing (more than 64 steps).
    const long = [...a, ...a, ...a, ...a, ...a, ...a].slice(0, 70);
    const [na, nb, nl] = await teacherForcedNll(model, [{ ids: a }, { ids: b }, { ids: long }], { batch: 3 });
    assertEquals([na.length, nb.length, nl.length], [a.length - 1, b.length - 1, 69]);
    ea.forEach((x, t) => assertAlmostEquals(na[t], x, 1e-3));
    eb.forEach((x, t) => assertAlmostEquals(nb[t], x, 1e-3));
    assertAlmostEquals(nl[68], nllOf((await model.prefill(long.slice(0, 69))).logits, long[69]), 1e-3);

    // Starting from prefill's KV of the first half: only the second half is scored.
    const half = 6;
    const pre = await model.prefill(a.slice(0, half));
    const layers: HeadCache[][] = pre.layers.map((l) =>
      Array.from({ length: H }, (_, h) => ({
        keys: l.keys.slice(h * half * hd, (h + 1) * half * hd),
        values: l.values.slice(h * half * hd, (h + 1) * half * hd),
      }))
    );
    const [fromCache] = await teacherForcedNll(model, [{ ids: a, start: { pos: half, layers } }]);
    for (let t = 0; t < half; t++) assert(Number.isNaN(fromCache[t]));
    for (let t = half; t < a.length - 1; t++) assertAlmostEquals(fromCache[t], ea[t], 1e-3);
  } finally {
    await model.close();
  }
});
