/**
 * `deno task bench:codec [--quick] [--out PATH] [--dump X]`: codec ratio, error and single-core speed
 * on the real KV samples (per-(layer, KV head) frames of [512, 8]) and on synthetic fp16
 * frames of head_dim 64 and 128, for every eb × k and every baseline; zstd levels 1 and 3
 * timed in the same run. Prints a table, writes JSON (default out/bench/codec.json).
 * MB/s are of input bytes (fp16 basis for the synthetic frames); `encMBs16`/`decMBs16` in the JSON
 * are on the fp16 basis for every set.
 *
 * With `--dump X` (the `X.k.npy`/`X.v.npy` that `kvrelay dump-kv` writes) only that KV is measured,
 * per (layer, KV head) fp32 frame, for the hand-off's codecs — fast, kvsort (k 8, and `kvsort-auto`:
 * the hand-off's adaptive kvsort with the embedded model's predictor coefficients), fp16, fp16_zstd —
 * against zstd -3 on the fp16 values, timed in the same run, each repeated `--reps` times (median).
 * @module
 */
import { defaultOut, exitOnHelp } from "./_cli.ts";
import { decode, encode, type EncodeOptions, inspect, type Tensor } from "../../shared/codec/mod.ts";
import { headFrames } from "./_kv_dump.ts";
import { toFloat32 } from "../../shared/dtype/mod.ts";
import { castToF16 } from "../../shared/codec/baselines/fp16.ts";
import { kvFrame } from "../../shared/codec/testdata/gen.ts";
import { KV_SAMPLES_DIR } from "../_harness/paths.ts";
import { loadCoefficientsBeside } from "../../shared/codec/predict/coefficients.ts";
import { EMBEDDED_MODEL_DIR } from "../../shared/config/mod.ts";

exitOnHelp(import.meta.url);

const args = Deno.args;
const quick = args.includes("--quick");
const outPath = args.includes("--out") ? args[args.indexOf("--out") + 1] : defaultOut("codec.json");
const dump = args.includes("--dump") ? args[args.indexOf("--dump") + 1] : undefined;
const dumpReps = args.includes("--reps") ? Number(args[args.indexOf("--reps") + 1]) : 15;

/** Each dumped frame's (role, layer, KV head), in {@link dumpFrames}' order. */
const dumpSlots: { role: "key" | "value"; layer: number; head: number }[] = [];

/** Per-(layer, KV head) fp32 frames `[T, D]` of a `[L, T, H, D]` K and V dump. */
function dumpFrames(base: string): Tensor[] {
  const frames: Tensor[] = [];
  for (const kv of ["k", "v"]) {
    for (const f of headFrames(`${base}.${kv}.npy`)) {
      frames.push({ dtype: "f32", shape: [f.rows, f.cols], data: f.data });
      dumpSlots.push({ role: kv === "k" ? "key" : "value", layer: f.layer, head: f.head });
    }
  }
  return frames;
}

function realFrames(): Tensor[] {
  const frames: Tensor[] = [];
  for (const s of quick ? ["00"] : ["00", "01", "02"]) {
    for (const kv of ["k", "v"]) {
      for (const f of headFrames(`${KV_SAMPLES_DIR}/stories260K/sample-${s}.${kv}.npy`)) {
        frames.push({ dtype: "f32", shape: [f.rows, f.cols], data: f.data });
      }
    }
  }
  return frames;
}

interface Row {
  set: string;
  codec: string;
  eb: number | null;
  k: string;
  ratioFp16: number;
  ratioFp32: number;
  maxErr: number;
  psnr: number;
  encMBs: number;
  decMBs: number;
  /** The same speeds on the fp16 basis (2 bytes a value). */
  encMBs16: number;
  decMBs16: number;
}

function measure(
  set: string,
  frames: Tensor[],
  label: { codec: string; eb: number | null; k: string },
  o: EncodeOptions | ((i: number) => EncodeOptions),
): Row {
  const optsOf = typeof o === "function" ? o : () => o;
  const n = frames.reduce((a, f) => a + f.data.length, 0);
  const inBytes = frames.reduce((a, f) => a + f.data.byteLength, 0);
  let streams: Uint8Array[] = [];
  const reps = dump ? dumpReps : quick ? 1 : 2;
  // the median pass: one slow pass (a page fault storm, a GC) does not move it
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1];
  const encTimes: number[] = [], decTimes: number[] = [];
  let outs: Tensor[] = [];
  for (let r = 0; r < reps; r++) {
    let t0 = performance.now();
    streams = frames.map((f, i) => encode(f, optsOf(i)));
    encTimes.push(performance.now() - t0);
    t0 = performance.now();
    outs = streams.map((s) => decode(s));
    decTimes.push(performance.now() - t0);
  }
  const encMs = median(encTimes), decMs = median(decTimes);
  const bytes = streams.reduce((a, s) => a + s.length, 0);
  let maxErr = 0, psnrSum = 0;
  frames.forEach((f, i) => {
    const x = toFloat32(f), y = toFloat32(outs[i]);
    let lo = Infinity, hi = -Infinity, se = 0;
    for (let j = 0; j < x.length; j++) {
      const d = Math.abs(x[j] - y[j]);
      maxErr = Math.max(maxErr, d);
      se += d * d;
      lo = Math.min(lo, x[j]), hi = Math.max(hi, x[j]);
    }
    psnrSum += se === 0 ? 200 : 20 * Math.log10(hi - lo) - 10 * Math.log10(se / x.length);
  });
  if (label.k === "auto" && streams.length) label.k = `auto(${inspect(streams[0]).k})`;
  return {
    set,
    ...label,
    ratioFp16: (n * 2) / bytes,
    ratioFp32: (n * 4) / bytes,
    maxErr,
    psnr: psnrSum / frames.length,
    encMBs: inBytes / 1e6 / (encMs / 1e3),
    decMBs: inBytes / 1e6 / (decMs / 1e3),
    encMBs16: (2 * n) / 1e6 / (encMs / 1e3),
    decMBs16: (2 * n) / 1e6 / (decMs / 1e3),
  };
}

const EBS = quick ? [1e-3, 1e-2, 1e-1] : [1e-3, 4e-3, 8e-3, 1e-2, 3e-2, 6.25e-2, 1e-1];
const KS: (number | "auto")[] = quick ? [1, 8, "auto"] : [1, 4, 8, 16, 32, "auto"];
const sets: [string, Tensor[]][] = dump ? [] : [
  ["stories260K[512,8]f32", realFrames()],
  ["synthetic[512,64]f16", Array.from({ length: quick ? 4 : 8 }, (_, i) => kvFrame(512, 64, "f16", 100 + i))],
  [
    "synthetic[2048,128]f16",
    Array.from({ length: quick ? 1 : 3 }, (_, i) => kvFrame(2048, 128, "f16", 200 + i)),
  ],
];
const rows: Row[] = [];
if (dump) {
  const frames = dumpFrames(dump);
  const set = `dump[${frames[0].shape}]f32×${frames.length}`;
  const fp16Frames: Tensor[] = frames.map((f) => {
    const x = f.data as Float32Array;
    const bits = castToF16(new Uint32Array(x.buffer, x.byteOffset, x.length), x);
    return { dtype: "f16", shape: f.shape, data: bits };
  });
  measure(set, frames.slice(0, 4), { codec: "warmup", eb: 1e-2, k: "-" }, { codec: "fast" });
  rows.push(measure(set, frames, { codec: "fast", eb: 1e-2, k: "-" }, { codec: "fast", errorBound: 1e-2 }));
  rows.push(
    measure(set, frames, { codec: "kvsort", eb: 1e-2, k: "8" }, { codec: "kvsort", errorBound: 1e-2 }),
  );
  // the hand-off's kvsort: per frame the cheapest of no sort, the shared sort, token-axis and the
  // model's cross-channel predictor
  const coefficients = await loadCoefficientsBeside(EMBEDDED_MODEL_DIR);
  rows.push(
    measure(set, frames, { codec: "kvsort-auto", eb: 1e-2, k: "adaptive" }, (i) => ({
      codec: "kvsort",
      errorBound: 1e-2,
      predictor: "auto",
      coefficients,
      ...dumpSlots[i],
    })),
  );
  rows.push(measure(set, frames, { codec: "fp16", eb: null, k: "-" }, { codec: "fp16" }));
  rows.push(measure(set, frames, { codec: "fp16_zstd", eb: null, k: "-" }, { codec: "fp16_zstd" }));
  // zstd -3 on the values as fp16: what a general-purpose compressor does with the cache as sent
  rows.push(measure(set, fp16Frames, { codec: "zstd-3", eb: null, k: "-" }, { codec: "zstd", zstdLevel: 3 }));
}
for (const [set, frames] of sets) {
  measure(set, frames.slice(0, 2), { codec: "warmup", eb: 1e-2, k: "8" }, { codec: "kvsort" });
  for (const eb of EBS) {
    for (const k of KS) {
      rows.push(
        measure(set, frames, { codec: "kvsort", eb, k: String(k) }, {
          codec: "kvsort",
          errorBound: eb,
          indexShare: k,
        }),
      );
    }
    rows.push(measure(set, frames, { codec: "sz", eb, k: "-" }, { codec: "sz", errorBound: eb }));
  }
  for (const codec of ["kivi8", "kivi4", "kivi2"] as const) {
    rows.push(measure(set, frames, { codec, eb: null, k: "-" }, { codec, role: "key" }));
  }
  for (const level of [1, 3]) {
    rows.push(
      measure(set, frames, { codec: `zstd-${level}`, eb: null, k: "-" }, { codec: "zstd", zstdLevel: level }),
    );
  }
  rows.push(measure(set, frames, { codec: "raw", eb: null, k: "-" }, { codec: "raw" }));
}
const fmt = (v: number, d = 2) => v.toFixed(d).padStart(8);
console.log(
  "set                       codec     eb        k        r16      r32   maxErr    PSNR  encMB/s  decMB/s  (fp16 basis: enc / dec MB/s)",
);
for (const r of rows) {
  console.log(
    `${r.set.padEnd(25)} ${r.codec.padEnd(9)} ${(r.eb === null ? "-" : r.eb.toExponential(1)).padEnd(9)} ${
      r.k.padEnd(8)
    }${fmt(r.ratioFp16)} ${fmt(r.ratioFp32)} ${r.maxErr.toExponential(1).padStart(8)} ${fmt(r.psnr, 1)} ${
      fmt(r.encMBs, 1)
    } ${fmt(r.decMBs, 1)}  ${fmt(r.encMBs16, 0)} / ${fmt(r.decMBs16, 0)}`,
  );
}
await Deno.mkdir(outPath.replace(/\/[^/]*$/, ""), { recursive: true });
await Deno.writeTextFile(outPath, JSON.stringify({ quick, date: new Date().toISOString(), rows }, null, 2));
console.log(`wrote ${outPath}`);
