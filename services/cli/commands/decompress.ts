/**
 * `kvrelay decompress --in Y --out Z.npy`: decodes a stream and writes it as `.npy` in the
 * same dtype and shape (bf16, which NumPy lacks, is written as fp32; `.safetensors` output
 * keeps bf16).
 * @module
 */
import { KvrelayError } from "../../../shared/errors.ts";
import { CorruptStreamError, decode } from "../../../shared/codec/mod.ts";
import { writeNpy } from "../../../shared/npy/mod.ts";
import { writeSafetensors } from "../../../shared/safetensors/mod.ts";
import { toFloat32 } from "../../../shared/dtype/mod.ts";
import { holdModelCoefficients, parseArgs, required } from "./_codec_args.ts";

export async function run(args: string[]): Promise<number> {
  const { opts } = parseArgs(args, []);
  const inPath = required(opts, "in"), out = required(opts, "out");
  const bytes = await Deno.readFile(inPath).catch((err) => {
    throw new KvrelayError("bad_request", `cannot read ${inPath}: ${err.message}`, { param: "in" });
  });
  await holdModelCoefficients();
  let t;
  try {
    t = decode(bytes);
  } catch (err) {
    if (err instanceof CorruptStreamError) {
      throw new KvrelayError("corrupt_bundle", `${inPath}: ${err.message}`);
    }
    throw err;
  }
  if (out.endsWith(".safetensors")) await Deno.writeFile(out, writeSafetensors({ kv: t }));
  else {
    const npyTensor = t.dtype === "bf16" ? { dtype: "f32" as const, shape: t.shape, data: toFloat32(t) } : t;
    await Deno.writeFile(out, writeNpy(npyTensor));
  }
  console.log(`${out}: ${t.dtype} [${t.shape}]`);
  return 0;
}
