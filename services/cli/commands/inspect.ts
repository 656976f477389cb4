/**
 * `kvrelay inspect Y [--json] [--original X.npy]`: prints a stream's codec, dtype, shape,
 * error bound, k, per-stage byte counts and ratios (against its dtype, fp16 and fp32); with
 * `--original`, also the max abs error and PSNR of the reconstruction.
 * @module
 */
import { KvrelayError } from "../../../shared/errors.ts";
import { CorruptStreamError, decodeWithInfo } from "../../../shared/codec/mod.ts";
import { DTYPE_BYTES, toFloat32 } from "../../../shared/dtype/mod.ts";
import { holdModelCoefficients, loadTensor, parseArgs } from "./_codec_args.ts";

export async function run(args: string[]): Promise<number> {
  const { opts, pos } = parseArgs(args, ["json"]);
  const path = pos[0] ?? opts.get("in");
  if (!path) {
    throw new KvrelayError("bad_request", "usage: kvrelay inspect STREAM [--json] [--original X.npy]");
  }
  const bytes = await Deno.readFile(path).catch((err) => {
    throw new KvrelayError("bad_request", `cannot read ${path}: ${err.message}`, { param: "in" });
  });
  await holdModelCoefficients();
  let decoded;
  try {
    decoded = decodeWithInfo(bytes);
  } catch (err) {
    if (err instanceof CorruptStreamError) {
      throw new KvrelayError("corrupt_bundle", `${path}: ${err.message}`);
    }
    throw err;
  }
  const { tensor, info } = decoded;
  const n = info.elements;
  const report: Record<string, unknown> = {
    ...info,
    ratio: (n * DTYPE_BYTES[info.dtype]) / bytes.length,
    ratioFp16: (n * 2) / bytes.length,
    ratioFp32: (n * 4) / bytes.length,
  };
  const original = opts.get("original");
  if (original) {
    const x = toFloat32(await loadTensor(original)), y = toFloat32(tensor);
    if (x.length !== y.length) {
      throw new KvrelayError("bad_request", `--original has ${x.length} values, stream ${n}`);
    }
    let maxErr = 0, se = 0, lo = Infinity, hi = -Infinity, m = 0;
    for (let i = 0; i < x.length; i++) {
      if (!Number.isFinite(x[i])) continue;
      const d = Math.abs(x[i] - y[i]);
      maxErr = Math.max(maxErr, d);
      se += d * d;
      lo = Math.min(lo, x[i]), hi = Math.max(hi, x[i]), m++;
    }
    report.maxAbsError = maxErr;
    report.psnr = se === 0 ? Infinity : 20 * Math.log10(hi - lo) - 10 * Math.log10(se / m);
  }
  if (opts.has("json")) console.log(JSON.stringify(report, (_, v) => v === Infinity ? "Infinity" : v, 2));
  else for (const [k, v] of Object.entries(report)) console.log(`${k.padEnd(14)} ${JSON.stringify(v)}`);
  return 0;
}
