/**
 * `deno task kvrelay calibrate-kv --model M [--tokenizer T] --prompt-file F [--prompt-file G ...]
 *   --out DIR/kv_predictor.bin [--lambda 1e-3]`
 *
 * Calibrates the codec's cross-channel predictor for a model: runs each calibration prompt's
 * prefill, gathers K and V per (layer, KV head), fits each channel on the same token's earlier
 * channels and the previous token's same channel (ridge least squares), and writes the
 * coefficient file that the model folder keeps beside its weights (`kv_predictor.bin`: prefill
 * and decode load it with the model; streams name it by hash). Prints the file's hash.
 * @module
 */
import { badRequest } from "../../../shared/errors.ts";
import { loadConfiguredModel } from "../../../shared/pipeline/load_model.ts";
import { PredictorFit } from "../../../shared/codec/predict/calibrate.ts";
import { buildCoefficientSet, type ChannelPredictor } from "../../../shared/codec/predict/coefficients.ts";
import { configFromFlags, parseFlags } from "../model_flags.ts";

export async function run(args: string[]): Promise<number> {
  const v = parseFlags(args, {
    model: { type: "string" },
    tokenizer: { type: "string" },
    device: { type: "string" },
    "prompt-file": { type: "string", multiple: true },
    out: { type: "string" },
    lambda: { type: "string", default: "1e-3" },
  });
  if (!v.out) throw badRequest("--out FILE is required (a model folder keeps it as kv_predictor.bin)");
  const files = v["prompt-file"] ?? [];
  if (!files.length) throw badRequest("give at least one --prompt-file");
  const lambda = Number(v.lambda);
  if (!(lambda > 0) || !Number.isFinite(lambda)) throw badRequest(`--lambda must be a positive number`);
  const model = await loadConfiguredModel(configFromFlags(v));
  try {
    const { nLayers, nKvHeads, headDim, maxSeqLen } = model.config;
    const fits = new Map<string, PredictorFit>();
    const fitOf = (role: string, l: number, h: number) => {
      const key = `${role}/${l}/${h}`;
      if (!fits.has(key)) fits.set(key, new PredictorFit(headDim));
      return fits.get(key)!;
    };
    let tokens = 0;
    for (const f of files) {
      let ids = model.tokenizer.encode(await Deno.readTextFile(f));
      if (ids.length >= maxSeqLen) ids = ids.slice(0, maxSeqLen - 1);
      const pre = await model.prefill(ids);
      tokens += pre.nPos;
      pre.layers.forEach((layer, l) => {
        for (let h = 0; h < nKvHeads; h++) {
          const at = h * pre.nPos * headDim, end = at + pre.nPos * headDim;
          fitOf("key", l, h).add(layer.keys.subarray(at, end), pre.nPos);
          fitOf("value", l, h).add(layer.values.subarray(at, end), pre.nPos);
        }
      });
    }
    const entries: ChannelPredictor[] = [];
    for (const role of ["key", "value"] as const) {
      for (let l = 0; l < nLayers; l++) {
        for (let h = 0; h < nKvHeads; h++) {
          entries.push(fitOf(role, l, h).solve({ role, layer: l, head: h }, lambda));
        }
      }
    }
    const set = buildCoefficientSet(headDim, entries);
    await Deno.writeFile(v.out, set.bytes);
    console.log(
      `wrote ${v.out}: ${entries.length} predictors of ${headDim} channels from ${files.length} prompts ` +
        `(${tokens} tokens); coefficient set ${set.hash}`,
    );
    return 0;
  } finally {
    await model.close();
  }
}
