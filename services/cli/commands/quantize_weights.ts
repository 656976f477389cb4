/**
 * `deno task kvrelay quantize-weights --model DIR --out DIR`
 *
 * Writes a copy of a Hugging Face model folder whose matrices are stored in 8 bits with one
 * scale per row (`shared/model/int8_weights.ts`): half of fp16's bytes, widened to fp32 when
 * the model loads. Vectors (norms, biases) keep their dtype. Every other file of the folder
 * (tokenizer, chat template, kv_predictor.bin, ...) is copied as it is, and `config.json` gains
 * the `quantization_config` that tells loaders what the I8 tensors mean.
 * Prints the bytes before and after and the worst rounding error relative to each row's range.
 * @module
 */
import { badRequest } from "../../../shared/errors.ts";
import { toFloat32 } from "../../../shared/dtype/mod.ts";
import {
  hfConfigToModelConfig,
  openCheckpointTensors,
  readJson,
} from "../../../shared/model/hf_checkpoint.ts";
import {
  INT8_ROWS_METHOD,
  quantizeRows,
  scaleTensorName,
  widenRows,
} from "../../../shared/model/int8_weights.ts";
import { type RawTensor, writeSafetensors } from "../../../shared/safetensors/mod.ts";
import type { Tensor } from "../../../shared/dtype/mod.ts";
import { parseFlags } from "../model_flags.ts";

const FLOAT_DTYPES = new Set(["F32", "F16", "BF16"]);
const WEIGHT_FILE = /(^model\.safetensors\.index\.json$|\.safetensors$)/;

export async function run(args: string[]): Promise<number> {
  const v = parseFlags(args, { model: { type: "string" }, out: { type: "string" } });
  if (!v.model || !v.out) throw badRequest("--model DIR and --out DIR are required");
  const src = v.model.replace(/\/+$/, ""), dst = v.out.replace(/\/+$/, "");
  const cfg = await readJson(`${src}/config.json`);
  if (cfg.quantization_config != null) throw badRequest(`${src} is already quantised`);
  hfConfigToModelConfig(cfg, "check"); // refuse what the loader would refuse, before writing
  if (await nonEmpty(dst)) throw badRequest(`--out ${dst} exists and is not empty`);

  const { files } = await openCheckpointTensors(src);
  const out: Record<string, Tensor | RawTensor> = {};
  let before = 0, worst = 0;
  for (const st of files.values()) {
    for (const e of st.entries.values()) {
      before += e.end - e.begin;
      if (e.shape.length !== 2 || !FLOAT_DTYPES.has(e.dtype)) {
        out[e.name] = { stDtype: e.dtype, shape: e.shape, bytes: st.bytes(e.name) };
        continue;
      }
      const [rows, cols] = e.shape;
      const w = toFloat32(st.tensor(e.name));
      const m = quantizeRows(w, rows, cols);
      worst = Math.max(worst, worstRowError(w, widenRows(m, rows, cols), rows, cols));
      out[e.name] = { stDtype: "I8", shape: e.shape, bytes: new Uint8Array(m.q.buffer) };
      out[scaleTensorName(e.name)] = { dtype: "f32", shape: [rows], data: m.scale };
    }
  }
  const weights = writeSafetensors(out, { metadata: { format: "pt", quantization: INT8_ROWS_METHOD } });

  try {
    await Deno.mkdir(dst, { recursive: true });
    for await (const f of Deno.readDir(src)) {
      if (f.isFile && !WEIGHT_FILE.test(f.name) && f.name !== "config.json") {
        await Deno.copyFile(`${src}/${f.name}`, `${dst}/${f.name}`);
      }
    }
    await Deno.writeFile(`${dst}/model.safetensors`, weights);
    const config = { ...cfg, quantization_config: { quant_method: INT8_ROWS_METHOD, bits: 8, group: "row" } };
    await Deno.writeTextFile(`${dst}/config.json`, JSON.stringify(config, null, 2) + "\n");
  } catch (err) {
    throw badRequest(`cannot write ${dst}: ${(err as Error).message}`);
  }
  console.log(
    `${src} -> ${dst}: tensors ${(before / 2 ** 20).toFixed(2)} MiB -> ${
      (weights.length / 2 ** 20).toFixed(2)
    } MiB, ` +
      `worst rounding error ${worst.toExponential(2)} of a row's largest |w|`,
  );
  return 0;
}

async function nonEmpty(dir: string): Promise<boolean> {
  try {
    for await (const _ of Deno.readDir(dir)) return true;
    return false;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw badRequest(`--out ${dir} cannot be used: ${(err as Error).message}`);
  }
}

/** max over rows of max |w - ŵ| / max |w| (0 for all-zero rows). */
function worstRowError(w: Float32Array, back: Float32Array, rows: number, cols: number): number {
  let worst = 0;
  for (let r = 0; r < rows; r++) {
    let max = 0, err = 0;
    for (let i = r * cols; i < (r + 1) * cols; i++) {
      max = Math.max(max, Math.abs(w[i]));
      err = Math.max(err, Math.abs(w[i] - back[i]));
    }
    if (max > 0) worst = Math.max(worst, err / max);
  }
  return worst;
}
