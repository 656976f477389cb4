/**
 * `deno task bench:kvsort-ablation --dump X [--dump Y ...] [--eb 1e-2] [--out F] [--model DIR]`
 *
 * What each part of the adaptive KVSort encoder buys on a model's own KV (the `X.k.npy`/`X.v.npy`
 * of `kvrelay dump-kv`), per-head frames at the relative bound given, fp16 basis, K and V
 * together, measured in one run:
 * - `kvsort k=8` — the shared sort with bit-packed indices (the encoder before this work);
 * - `kvsort k=8 lehmer` — the same with Lehmer-coded permutations (stage bytes, container added);
 * - `no sort` — the unsorted SZ pipeline (k = 0);
 * - `token` — the token-axis predictor on every frame;
 * - `auto (no coefficients)` — the per-frame choice among no sort, the shared sort and token;
 * - `cross` — the calibrated cross-channel predictor on every frame;
 * - `auto` — the per-frame choice with the cross-channel predictor among the candidates (the
 *   hand-off's kvsort).
 * Writes JSON (default out/bench/kvsort_ablation.json; `--out` names another) and prints a table per dump.
 * @module
 */
import { parseArgs } from "node:util";
import { encode, type EncodeOptions } from "../../shared/codec/mod.ts";
import { headFrames } from "./_kv_dump.ts";
import { EMBEDDED_MODEL_DIR } from "../../shared/config/mod.ts";
import { loadCoefficientsBeside } from "../../shared/codec/predict/coefficients.ts";
import { szEncode } from "../../shared/codec/pipeline.ts";
import { PREDICTORS } from "../../shared/codec/predict/mod.ts";
import { absoluteBound } from "../../shared/codec/mod.ts";
import { saveLossless } from "../../shared/codec/lossless/zstd.ts";
import { ByteWriter } from "../../shared/codec/bytes.ts";
import { defaultOut, exitOnHelp } from "./_cli.ts";

exitOnHelp(import.meta.url);

const { values: v } = parseArgs({
  args: Deno.args,
  options: {
    dump: { type: "string", multiple: true },
    eb: { type: "string", default: "1e-2" },
    out: { type: "string", default: defaultOut("kvsort_ablation.json") },
    model: { type: "string", default: EMBEDDED_MODEL_DIR },
  },
});
if (!v.dump?.length) throw new RangeError("give --dump X (the base of kvrelay dump-kv's X.k.npy / X.v.npy)");
const eb = Number(v.eb);
const set = await loadCoefficientsBeside(v.model);
if (!set) throw new RangeError(`${v.model} has no kv_predictor.bin (kvrelay calibrate-kv makes one)`);

interface Frame {
  data: Float32Array;
  rows: number;
  role: "key" | "value";
  layer: number;
  head: number;
}

function framesOf(base: string): Frame[] {
  const out: Frame[] = [];
  for (const role of ["key", "value"] as const) {
    for (const f of headFrames(`${base}.${role[0]}.npy`)) {
      out.push({ data: f.data, rows: f.rows, role, layer: f.layer, head: f.head });
    }
  }
  return out;
}

/** kvsort k=8 with Lehmer-coded permutations: the composer's stage bytes in a container's worth of bytes. */
function lehmerK8(f: Frame, cols: number): number {
  const bits = new Uint32Array(f.data.buffer, f.data.byteOffset, f.data.length);
  const ebAbs = absoluteBound(f.data, eb, "rel");
  const { body } = szEncode({ x: f.data, bits, dtype: "f32", rows: f.rows, cols }, {
    ebAbs,
    errorBound: eb,
    mode: "rel",
    k: Math.min(8, f.rows),
    predictor: PREDICTORS.qfirst,
    lehmer: true,
  });
  const w = new ByteWriter();
  saveLossless(body, "auto", 1, w);
  return w.pos + 15; // the container header of a [rows, 64] f32 frame
}

const VARIANTS: [string, Partial<EncodeOptions> | "lehmer"][] = [
  ["kvsort k=8", { predictor: "qfirst", indexShare: 8 }],
  ["kvsort k=8 lehmer", "lehmer"],
  ["no sort", { codec: "sz", predictor: "qfirst" }],
  ["token", { predictor: "token" }],
  ["auto (no coefficients)", { predictor: "auto" }],
  ["cross", { predictor: "cross" }],
  ["auto", { predictor: "auto" }],
];

const rows: {
  dump: string;
  variant: string;
  ratio_fp16: number;
  key_ratio_fp16: number;
  value_ratio_fp16: number;
}[] = [];
for (const base of v.dump) {
  const frames = framesOf(base);
  for (const [variant, o] of VARIANTS) {
    const bytes = { key: 0, value: 0 }, n = { key: 0, value: 0 };
    for (const f of frames) {
      const cols = f.data.length / f.rows;
      let size: number;
      if (o === "lehmer") size = lehmerK8(f, cols);
      else {
        const opts: EncodeOptions = { codec: "kvsort", errorBound: eb, mode: "rel", role: f.role, ...o };
        if (variant === "cross" || variant === "auto") {
          Object.assign(opts, { coefficients: set, layer: f.layer, head: f.head });
        }
        size = encode({ dtype: "f32", shape: [f.rows, cols], data: f.data }, opts).length;
      }
      bytes[f.role] += size;
      n[f.role] += f.data.length;
    }
    rows.push({
      dump: base,
      variant,
      ratio_fp16: (2 * (n.key + n.value)) / (bytes.key + bytes.value),
      key_ratio_fp16: (2 * n.key) / bytes.key,
      value_ratio_fp16: (2 * n.value) / bytes.value,
    });
  }
}
console.log(`per-head frames, rel ${eb}, fp16 basis; coefficient set ${set.hash}`);
console.log("dump                       variant                    K+V      K       V");
for (const r of rows) {
  console.log(
    `${r.dump.split("/").at(-1)!.padEnd(26)} ${r.variant.padEnd(24)} ${r.ratio_fp16.toFixed(3).padStart(7)} ${
      r.key_ratio_fp16.toFixed(3).padStart(7)
    } ${r.value_ratio_fp16.toFixed(3).padStart(7)}`,
  );
}
await Deno.writeTextFile(
  v.out,
  JSON.stringify({ errorBound: eb, coefficients: set.hash, date: new Date().toISOString(), rows }, null, 2) +
    "\n",
);
console.log(`wrote ${v.out}`);
