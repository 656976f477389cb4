import { assertEquals } from "@std/assert";
import { STORIES260K } from "../../../tests/_harness/paths.ts";
import { readNpy } from "../../../shared/npy/mod.ts";
import { Model } from "../../../shared/model/mod.ts";
import { run } from "./dump_kv.ts";

Deno.test("dump-kv writes the prompt's K and V as [layer, position, kv_head, head_dim] matching prefill", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const code = await run([
      "--model",
      STORIES260K.model,
      "--tokenizer",
      STORIES260K.tokenizer,
      "--prompt",
      "Once upon a time",
      "--out",
      `${dir}/x.npy`,
    ]);
    assertEquals(code, 0);
    const k = readNpy(await Deno.readFile(`${dir}/x.k.npy`));
    const meta = JSON.parse(await Deno.readTextFile(`${dir}/x.json`));
    const model = await Model.load({ modelPath: STORIES260K.model, tokenizerPath: STORIES260K.tokenizer });
    const pre = await model.prefill(meta.tokens);
    await model.close();
    const { nLayers, nKvHeads, headDim } = model.config;
    assertEquals(k.shape, [nLayers, pre.nPos, nKvHeads, headDim]);
    // Spot-check layer 3, position 2, head 1.
    const [l, p, h] = [3, 2, 1];
    const want = pre.layers[l].keys.subarray((h * pre.nPos + p) * headDim, (h * pre.nPos + p + 1) * headDim);
    const at = ((l * pre.nPos + p) * nKvHeads + h) * headDim;
    assertEquals(Array.from((k.data as Float32Array).subarray(at, at + headDim)), Array.from(want));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
