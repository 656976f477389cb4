/**
 * `deno task kvrelay dump-kv --model M [--tokenizer T] (--prompt TEXT | --prompt-file F) --out X.npy`
 *
 * Writes the prompt's KV cache as two fp32 `.npy` files, `X.k.npy` and `X.v.npy` (or `X.npy`
 * holding keys when `--only k`), shape `[layer, position, kv_head, head_dim]` with keys after
 * RoPE, plus `X.json`: model, token ids, text and the eviction metric's shape — the layout of
 * ../shared/kv-samples, so the codec and eviction benchmarks take it as it is.
 * @module
 */
import { badRequest } from "../../../shared/errors.ts";
import { loadConfiguredModel } from "../../../shared/pipeline/load_model.ts";
import { writeNpy } from "../../../shared/npy/mod.ts";
import { configFromFlags, MODEL_FLAGS, parseFlags, readPrompt } from "../model_flags.ts";

/** `[nKvHeads, nPos, headDim]` per layer → `[layer, position, kv_head, head_dim]`. */
export function toSampleLayout(
  layers: Float32Array[],
  nKvHeads: number,
  nPos: number,
  headDim: number,
): Float32Array {
  const out = new Float32Array(layers.length * nPos * nKvHeads * headDim);
  layers.forEach((src, l) => {
    for (let h = 0; h < nKvHeads; h++) {
      for (let p = 0; p < nPos; p++) {
        const from = (h * nPos + p) * headDim;
        out.set(src.subarray(from, from + headDim), ((l * nPos + p) * nKvHeads + h) * headDim);
      }
    }
  });
  return out;
}

export async function run(args: string[]): Promise<number> {
  const v = parseFlags(args, { ...MODEL_FLAGS, out: { type: "string" } });
  if (!v.out || !v.out.endsWith(".npy")) throw badRequest("--out X.npy is required");
  const config = configFromFlags(v);
  const text = await readPrompt(v);
  if (text === undefined) throw badRequest("give --prompt or --prompt-file");
  const model = await loadConfiguredModel(config);
  try {
    const ids = model.tokenizer.encode(text);
    if (ids.length >= model.config.maxSeqLen) {
      throw badRequest(
        `the prompt has ${ids.length} tokens; the model's context is ${model.config.maxSeqLen}`,
      );
    }
    const pre = await model.prefill(ids);
    const { nLayers, nKvHeads, headDim } = model.config;
    const shape = [nLayers, pre.nPos, nKvHeads, headDim];
    const base = v.out.slice(0, -".npy".length);
    const k = toSampleLayout(pre.layers.map((l) => l.keys), nKvHeads, pre.nPos, headDim);
    const val = toSampleLayout(pre.layers.map((l) => l.values), nKvHeads, pre.nPos, headDim);
    await Deno.writeFile(`${base}.k.npy`, writeNpy({ dtype: "f32", shape, data: k }));
    await Deno.writeFile(`${base}.v.npy`, writeNpy({ dtype: "f32", shape, data: val }));
    await Deno.writeTextFile(
      `${base}.json`,
      JSON.stringify({
        model: model.config.name,
        tokens: ids,
        text,
        layout: "[layer, position, kv_head, head_dim], fp32, keys after RoPE (rotate_half order)",
        files: [`${base}.k.npy`, `${base}.v.npy`],
      }),
    );
    console.log(`wrote ${base}.k.npy, ${base}.v.npy, ${base}.json: [${shape.join(", ")}]`);
    return 0;
  } finally {
    await model.close();
  }
}
