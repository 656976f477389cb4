/**
 * `deno task bench:ratio-vs-k --dump X [--dump Y ...] [--ebs 1e-3,1e-2,1e-1] [--out F] [--model DIR]`
 *
 * KVSort's compression ratio against the index sharing k on the project's own model KV (the
 * `X.k.npy`/`X.v.npy` that `kvrelay dump-kv` writes, `[layer, position, kv_head, head_dim]` fp32):
 * - both layouts: per-head rows (`[T, head_dim]` frames, one per layer, KV head and K/V) and
 *   the reference's all-heads-of-a-layer rows (`[T, kv_heads · head_dim]`, one per layer and K/V);
 * - both error-bound definitions: relative to each frame's range (`frame`, the codec's `rel`)
 *   and relative to the whole layer's range of K or V (`layer`, applied as an absolute bound);
 * - both bases: the ratio against the fp32 values encoded and against their fp16 bytes.
 * k = 0 is the unsorted pipeline; every k uses the KVSort algorithm (shared sort + quantize-first
 * prediction). Rows `k: "adaptive"` are the default encoder (per frame: no sort, the shared sort,
 * the token-axis or, with `--model`'s kv_predictor.bin, the cross-channel predictor; `predictor: "auto"`).
 * Writes JSON (default out/bench/kvsort_ratio_vs_k.json; `--out` names another) and prints a table.
 * @module
 */
import { parseArgs } from "node:util";
import { decode, encode, type EncodeOptions, type Tensor } from "../../shared/codec/mod.ts";
import { readNpy } from "../../shared/npy/mod.ts";
import { EMBEDDED_MODEL_DIR } from "../../shared/config/mod.ts";
import { loadCoefficientsBeside } from "../../shared/codec/predict/coefficients.ts";
import { absoluteBound } from "../../shared/codec/mod.ts";
import { defaultOut, exitOnHelp } from "./_cli.ts";

exitOnHelp(import.meta.url);

const { values: v } = parseArgs({
  args: Deno.args,
  options: {
    dump: { type: "string", multiple: true },
    ebs: { type: "string", default: "1e-3,1e-2,1e-1" },
    ks: { type: "string", default: "0,1,2,4,8,16,32,64,128" },
    out: { type: "string", default: defaultOut("kvsort_ratio_vs_k.json") },
    model: { type: "string", default: EMBEDDED_MODEL_DIR },
  },
});
if (!v.dump?.length) throw new RangeError("give --dump X (the base of kvrelay dump-kv's X.k.npy / X.v.npy)");
const ebs = v.ebs.split(",").map(Number);
const ks = v.ks.split(",").map(Number);
const set = await loadCoefficientsBeside(v.model);

/** One frame to encode, with what the bound is relative to. */
interface Frame {
  tensor: Tensor;
  role: "key" | "value";
  layer: number;
  head: number;
  /** max − min over the frame's whole layer (K or V). */
  layerRange: number;
}

function framesOf(base: string, layout: "head" | "layer"): Frame[] {
  const out: Frame[] = [];
  for (const role of ["key", "value"] as const) {
    const t = readNpy(Deno.readFileSync(`${base}.${role[0]}.npy`));
    const [L, P, H, D] = t.shape, x = t.data as Float32Array;
    for (let l = 0; l < L; l++) {
      const layer = x.subarray(l * P * H * D, (l + 1) * P * H * D);
      const layerRange = absoluteBound(layer, 1, "rel");
      if (layout === "layer") {
        out.push({
          tensor: { dtype: "f32", shape: [P, H * D], data: layer.slice() },
          role,
          layer: l,
          head: -1,
          layerRange,
        });
        continue;
      }
      for (let h = 0; h < H; h++) {
        const f = new Float32Array(P * D);
        for (let p = 0; p < P; p++) f.set(layer.subarray((p * H + h) * D, (p * H + h + 1) * D), p * D);
        out.push({ tensor: { dtype: "f32", shape: [P, D], data: f }, role, layer: l, head: h, layerRange });
      }
    }
  }
  return out;
}

/** A row of the JSON (also what `deno task plots` reads). */
export interface RatioVsKRow {
  layout: "head" | "layer";
  eb_definition: "frame" | "layer";
  error_bound: number;
  k: number | "adaptive";
  role: "key" | "value" | "both";
  ratio_fp32: number;
  ratio_fp16: number;
  values: number;
  bytes: number;
}

const rows: RatioVsKRow[] = [];
const t0 = performance.now();
for (const layout of ["head", "layer"] as const) {
  const frames = v.dump.flatMap((b) => framesOf(b, layout));
  for (const def of ["frame", "layer"] as const) {
    for (const eb of ebs) {
      for (const k of [...ks, "adaptive" as const]) {
        const bytes = { key: 0, value: 0 }, values = { key: 0, value: 0 };
        for (const f of frames) {
          const o: EncodeOptions = {
            codec: "kvsort",
            errorBound: def === "frame" ? eb : eb * f.layerRange,
            mode: def === "frame" ? "rel" : "abs",
            role: f.role,
          };
          if (k === "adaptive") {
            o.predictor = "auto";
            if (set && f.head >= 0) Object.assign(o, { coefficients: set, layer: f.layer, head: f.head });
          } else {Object.assign(
              o,
              k === 0 ? { codec: "sz", predictor: "qfirst" } : { indexShare: k, predictor: "qfirst" },
            );}
          const s = encode(f.tensor, o);
          bytes[f.role] += s.length;
          values[f.role] += f.tensor.data.length;
        }
        for (const role of ["key", "value", "both"] as const) {
          const b = role === "both" ? bytes.key + bytes.value : bytes[role];
          const n = role === "both" ? values.key + values.value : values[role];
          rows.push({
            layout,
            eb_definition: def,
            error_bound: eb,
            k,
            role,
            ratio_fp32: (4 * n) / b,
            ratio_fp16: (2 * n) / b,
            values: n,
            bytes: b,
          });
        }
      }
      console.error(`${layout} ${def} ${eb}: ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    }
  }
}
// one decode per layout as a sanity check that the streams are whole
decode(encode(framesOf(v.dump[0], "head")[0].tensor, { codec: "kvsort" }));

console.log("layout eb_def  eb       k         K r16   V r16   K+V r16  K+V r32");
for (const r of rows.filter((r) => r.role === "both")) {
  const of = (role: string) =>
    rows.find((x) =>
      x.role === role && x.layout === r.layout &&
      x.eb_definition === r.eb_definition && x.error_bound === r.error_bound && x.k === r.k
    )!;
  console.log(
    `${r.layout.padEnd(6)} ${r.eb_definition.padEnd(6)} ${r.error_bound.toExponential(0).padEnd(8)} ${
      String(r.k).padEnd(9)
    } ${of("key").ratio_fp16.toFixed(2).padStart(6)}  ${of("value").ratio_fp16.toFixed(2).padStart(6)}  ${
      r.ratio_fp16.toFixed(2).padStart(7)
    }  ${r.ratio_fp32.toFixed(2).padStart(7)}`,
  );
}
await Deno.writeTextFile(
  v.out,
  JSON.stringify(
    {
      what:
        "KVSort compression ratio against k, two layouts, two error-bound definitions, fp32 and fp16 bases",
      dumps: v.dump,
      coefficients: set?.hash ?? null,
      date: new Date().toISOString(),
      rows,
    },
    null,
    2,
  ) + "\n",
);
console.log(`wrote ${v.out} (deno task plots draws it: docs/plots/ratio_vs_k)`);
