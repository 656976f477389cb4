/**
 * `deno task bench:codec-fast-gpu [--tokens 512] [--layers 32] [--kv-heads 8] [--head-dim 128]
 * [--error-bound 1e-2] [--mode rel] [--reps 3] [--cpu-frames 8] [--batch-mib 1024] [--inflight 2]
 * [--budget-s 100] [--encoder webgpu|cuda|webgpu,cuda] [--cuda-sub-batch-mib 64] [--label NAME]
 * [--out PATH]`: the fast codec on WebGPU (encodeMany / decodeMany of shared/codec/webgpu/fast)
 * and, with `--encoder cuda`, on CUDA (shared/codec/cuda, tests/bench/_cuda_fast_side.ts) on one
 * request's KV shaped like Llama-3-8B's — 32 layers × 8 KV heads × K and V, frames of
 * [tokens, 128] f32 — beside the CPU fast codec, all in one run.
 *
 * The KV is synthetic but drawn to look like real KV: per-channel scales (log-normal), a few
 * outlier channels with 8–20× the scale in K (one in V), per-channel offsets in K, rotary-like
 * rotation of K's channel pairs along tokens (frequencies 10000^(-2i/d)), slow drift in V, and
 * noise. Reported, all GB/s of fp16 input bytes (values × 2):
 *
 * - ratio: fp16 bytes / compressed bytes (all streams, headers included);
 * - kernel GB/s: the sum of compute-pass times from timestamp queries when the adapter offers
 *   'timestamp-query', else submit → done with the data already on the GPU;
 * - end-to-end GB/s: the whole `encodeMany` (host f32 frames → streams: upload, three round
 *   trips, headers and crc32) and `decodeMany` (streams → host f32 tensors in new memory), median
 *   of `--reps`; on CUDA also `decodeManyInto` (into one output buffer reused across calls, as a
 *   decode service's pool: the values by DMA into it), and both encodes again with fp16 input
 *   (the frames rounded to f16 once, untimed; `streamDtype: "f32"`: half the bytes go up and are
 *   widened on the device), whose streams are checked against the widened values' f32 streams;
 * - the host↔GPU copy rates alone on the same bytes (writeBuffer up; copy, map and copy out down);
 * - the CPU fast codec on `--cpu-frames` frames spread over the request, where the GPU streams
 *   are also checked byte for byte against the CPU's, the decoded values bit for bit, and the
 *   error against the bound.
 *
 * Default `--tokens 512` keeps a software adapter (lavapipe) under a minute; on a GPU host use
 * `--tokens 8192` (512 frames of [8192, 128], 1 GiB of fp16). Prints a markdown table and
 * writes JSON to out/bench/codec_fast_gpu_<label>.json (label: the GPU adapter, or
 * the CPU model and cores on a software adapter; tests/bench/_machine.ts). A watchdog writes
 * what there is if WebGPU hangs past the budget.
 * @module
 */
import { defaultOut, exitOnHelp } from "./_cli.ts";
import { parseArgs } from "node:util";
import { decode, encode, type EncodeOptions, type Tensor } from "../../shared/codec/mod.ts";
import { fromFloat32 } from "../../shared/dtype/mod.ts";
import {
  acquireGpu,
  createGpuFastCodec,
  type GpuFastCodec,
  type GpuHandle,
} from "../../shared/codec/webgpu/mod.ts";
import { machineInfo, machineLabel } from "./_machine.ts";
import { runCudaSide } from "./_cuda_fast_side.ts";

exitOnHelp(import.meta.url);

const args = parseArgs({
  args: Deno.args.filter((a) => a !== "--"),
  strict: true,
  options: {
    tokens: { type: "string", default: "512" },
    layers: { type: "string", default: "32" },
    "kv-heads": { type: "string", default: "8" },
    "head-dim": { type: "string", default: "128" },
    "error-bound": { type: "string", default: "1e-2" },
    mode: { type: "string", default: "rel" },
    reps: { type: "string", default: "3" },
    "cpu-frames": { type: "string", default: "8" },
    "batch-mib": { type: "string", default: "1024" },
    inflight: { type: "string", default: "2" },
    "budget-s": { type: "string", default: "100" },
    encoder: { type: "string", default: "webgpu" },
    "cuda-sub-batch-mib": { type: "string", default: "64" },
    label: { type: "string" },
    out: { type: "string" },
  },
}).values;

const tokens = Number(args.tokens), layers = Number(args.layers), heads = Number(args["kv-heads"]);
const headDim = Number(args["head-dim"]), reps = Math.max(1, Number(args.reps));
const errorBound = Number(args["error-bound"]), mode = args.mode as "abs" | "rel";
const cpuFrames = Number(args["cpu-frames"]), maxBatchBytes = Number(args["batch-mib"]) * 2 ** 20;
const inflight = Number(args.inflight);
const budgetMs = Number(args["budget-s"]) * 1000;
const started = performance.now();
/** GPU backends to run beside the CPU: webgpu, cuda, or both (`--encoder webgpu,cuda`). */
const encoders = args.encoder!.split(",").map((x) => x.trim());
if (encoders.some((e) => e !== "webgpu" && e !== "cuda" && e !== "cpu")) {
  throw new Error(`bench:codec-fast-gpu: --encoder takes cpu, webgpu, cuda (a list), got '${args.encoder}'`);
}

/** xorshift32, two uniform draws per step: cheap enough for 2^29 values. */
function prng(seed: number): () => number {
  let x = (seed * 2654435761) >>> 0 || 1;
  return () => {
    x ^= x << 13, x ^= x >>> 17, x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

/** One KV frame [tokens, headDim] of (layer, head, K or V). */
function kvHeadFrame(layer: number, head: number, key: boolean): Tensor {
  const r = prng(1 + layer * 131 + head * 17 + (key ? 0 : 7919));
  const gauss = () => (r() + r() + r() - 1.5) * 2; // ~N(0, 1)
  const d = headDim;
  const scale = new Float32Array(d), offset = new Float32Array(d), noise = new Float32Array(d);
  for (let c = 0; c < d; c++) {
    scale[c] = Math.exp(0.5 * gauss()) * (key ? 1.2 : 0.4);
    noise[c] = scale[c] * (key ? 0.15 : 0.5);
    offset[c] = key ? gauss() * scale[c] : 0.1 * gauss() * scale[c];
  }
  const outliers = key ? 3 : 1;
  for (let k = 0; k < outliers; k++) {
    const c = Math.floor(r() * d);
    scale[c] *= key ? 8 + 12 * r() : 4;
    offset[c] *= key ? 4 : 1;
  }
  // rotation of channel pairs (K: rotary frequencies; V: slow drift) as a recurrence, no sin per value
  const pairs = d >> 1;
  const cs = new Float32Array(pairs), sn = new Float32Array(pairs);
  const a = new Float32Array(pairs), b = new Float32Array(pairs);
  for (let i = 0; i < pairs; i++) {
    const theta = key ? 10000 ** (-2 * i / d) : 0.002 + 0.01 * r();
    cs[i] = Math.cos(theta), sn[i] = Math.sin(theta);
    const phase = 2 * Math.PI * r();
    a[i] = Math.cos(phase), b[i] = Math.sin(phase);
  }
  const x = new Float32Array(tokens * d);
  for (let t = 0; t < tokens; t++) {
    const row = t * d;
    for (let i = 0; i < pairs; i++) {
      const c0 = 2 * i, c1 = c0 + 1;
      x[row + c0] = offset[c0] + scale[c0] * a[i] + noise[c0] * (r() - 0.5) * 3.4;
      x[row + c1] = offset[c1] + scale[c1] * b[i] + noise[c1] * (r() - 0.5) * 3.4;
      const na = a[i] * cs[i] - b[i] * sn[i];
      b[i] = a[i] * sn[i] + b[i] * cs[i];
      a[i] = na;
    }
  }
  return { dtype: "f32", shape: [tokens, d], data: x };
}

interface Side {
  /** Host ms by phase, summed over the batches of the last end-to-end run (context.ts FastTiming). */
  phases: Record<string, number>;
  kernelMs: number;
  kernelGBs: number;
  source: string;
  e2eMs: number;
  e2eGBs: number;
  batches: number;
  submissions: number;
}

const gbs = (bytes: number, ms: number) => bytes / 1e9 / (ms / 1000);
const median = (x: number[]) => [...x].sort((p, q) => p - q)[Math.floor(x.length / 2)];
/** Phases summed over batches, rounded to 0.1 ms. */
function phases(
  batches: { timing: { phases: Record<string, number> } }[],
  extra: Record<string, number> = {},
) {
  const sum: Record<string, number> = { ...extra };
  for (const b of batches) for (const [k, v] of Object.entries(b.timing.phases)) sum[k] = (sum[k] ?? 0) + v;
  return Object.fromEntries(Object.entries(sum).map(([k, v]) => [k, Math.round(v * 10) / 10]));
}

let handle: GpuHandle | undefined;
let codec: GpuFastCodec | undefined;
let gpuError: string | undefined;
const doc: Record<string, unknown> = {};
let label = args.label ?? "";
let outPath = "";

async function writeResults(partial?: string): Promise<void> {
  if (!label) {
    const probe: Parameters<typeof machineLabel>[0] = codec
      ? { found: true, description: codec.adapter.description, software: codec.software }
      : { found: false, reason: gpuError ?? "none" };
    label = machineLabel(probe);
  }
  outPath = args.out ?? defaultOut(`codec_fast_gpu_${label.replace(/[^A-Za-z0-9_.-]+/g, "-")}.json`);
  const full = {
    label,
    date: new Date().toISOString(),
    machine: machineInfo(),
    adapter: codec ? { ...codec.adapter, software: codec.software, timestamps: codec.timestamps } : null,
    gpuError: gpuError ?? null,
    partial: partial ?? null,
    ...doc,
  };
  await Deno.mkdir(outPath.replace(/\/[^/]*$/, ""), { recursive: true });
  await Deno.writeTextFile(outPath, JSON.stringify(full, null, 2) + "\n");
}

const watchdog = setTimeout(async () => {
  await writeResults("watchdog: the time budget ran out with a GPU call outstanding");
  console.error(`watchdog fired; partial results in ${outPath}`);
  Deno.exit(2);
}, budgetMs + 60_000);

// ---- the request's frames -----------------------------------------------------------------
const t0 = performance.now();
const frames: Tensor[] = [];
for (let l = 0; l < layers; l++) {
  for (let h = 0; h < heads; h++) frames.push(kvHeadFrame(l, h, true), kvHeadFrame(l, h, false));
}
const values = frames.reduce((s, t) => s + t.data.length, 0);
const fp16Bytes = 2 * values;
const genMs = performance.now() - t0;
const o: EncodeOptions = { codec: "fast", errorBound, mode };
doc.config = {
  tokens,
  layers,
  kvHeads: heads,
  headDim,
  frames: frames.length,
  values,
  fp16MiB: fp16Bytes / 2 ** 20,
  f32MiB: 2 * fp16Bytes / 2 ** 20,
  errorBound,
  mode,
  reps,
  maxBatchMiB: maxBatchBytes / 2 ** 20,
  inflight,
  gbsBasis: "fp16 input bytes (values × 2) / time",
  kv:
    "synthetic Llama-3-8B-shaped: log-normal channel scales, outlier channels, rotary-like K, drifting V, noise",
};
console.error(
  `${frames.length} frames of [${tokens}, ${headDim}] (${(fp16Bytes / 2 ** 20).toFixed(0)} MiB fp16) in ${
    genMs.toFixed(0)
  } ms`,
);

// ---- the CPU codec on a spread of frames ---------------------------------------------------
// frames spread over the layers, K and V alike
const nPick = Math.min(cpuFrames, frames.length);
const pick = [
  ...new Set(Array.from({ length: nPick }, (_, k) => (Math.floor(k * frames.length / nPick) & ~1) + (k & 1))),
];
let cpuEncMs = 0, cpuDecMs = 0, cpuValues = 0, cpuBytes = 0;
const cpuStreams = new Map<number, Uint8Array>();
for (const i of pick) {
  const s0 = performance.now();
  const s = encode(frames[i], o);
  const s1 = performance.now();
  decode(s);
  cpuDecMs += performance.now() - s1;
  cpuEncMs += s1 - s0;
  cpuValues += frames[i].data.length;
  cpuBytes += s.length;
  cpuStreams.set(i, s);
}
const cpu = {
  frames: pick.length,
  encGBs: gbs(2 * cpuValues, cpuEncMs),
  decGBs: gbs(2 * cpuValues, cpuDecMs),
  ratio: 2 * cpuValues / cpuBytes,
};
doc.cpu = cpu;
console.error(
  `cpu: enc ${cpu.encGBs.toFixed(3)} dec ${cpu.decGBs.toFixed(3)} GB/s, ratio ${cpu.ratio.toFixed(2)}`,
);

// ---- the GPU -------------------------------------------------------------------------------
if (encoders.includes("cuda")) {
  // the fp16-input encodes' frames: the same values rounded to f16 (f32ToF16Bits), once, untimed
  const h0 = performance.now();
  const f16Frames = frames.map((t) => fromFloat32(t.data as Float32Array, t.shape, "f16"));
  console.error(`fp16 copies of the frames in ${(performance.now() - h0).toFixed(0)} ms`);
  doc.cuda = await runCudaSide({
    frames,
    f16Frames,
    o,
    reps,
    cpuStreams,
    fp16Bytes,
    subBatchBytes: Number(args["cuda-sub-batch-mib"]) * 2 ** 20,
    libPath: Deno.env.get("KVRELAY_CUDA_LIB") || undefined,
  });
}
if (encoders.includes("webgpu")) {
  try {
    handle = await acquireGpu({ timeoutMs: 20_000 });
    codec = await createGpuFastCodec({ handle });
  } catch (err) {
    gpuError = (err as Error)?.message ?? String(err);
    console.error(`no WebGPU: ${gpuError}; CPU columns only`);
  }
}

let enc: Side | undefined, dec: Side | undefined;
if (codec && handle) {
  const g = codec, run = { maxBatchBytes, inflight };
  await g.encodeManyWithInfo(frames.slice(0, 4), o, run); // first use: pipelines, allocations

  // encode: end to end, then kernels with timestamps
  const times: number[] = [];
  let last = await g.encodeManyWithInfo(frames, o, run);
  for (let k = 0; k < reps && performance.now() - started < budgetMs; k++) {
    const s = performance.now();
    last = await g.encodeManyWithInfo(frames, o, run);
    times.push(performance.now() - s);
  }
  const streams = last.results.map((r, i) => {
    if (r.status === "rejected") throw new Error(`frame ${i}: ${r.reason}`);
    return r.value;
  });
  const timed = await g.encodeManyWithInfo(frames, o, { ...run, timestamps: true });
  const kMs = timed.batches.reduce((s, b) => s + b.timing.gpuMs, 0);
  const e2eMs = median(times);
  enc = {
    phases: phases(last.batches),
    kernelMs: kMs,
    kernelGBs: gbs(fp16Bytes, kMs),
    source: timed.batches[0]?.timing.source ?? "none",
    e2eMs,
    e2eGBs: gbs(fp16Bytes, e2eMs),
    batches: timed.batches.length,
    submissions: timed.batches.reduce((s, b) => s + b.timing.submissions, 0),
  };
  const compressed = streams.reduce((s, b) => s + b.length, 0);
  const onGpu = last.frames.filter((f) => f.backend === "webgpu").length;
  const fallbacks = [...new Set(last.frames.map((f) => f.fallback).filter(Boolean))];
  console.error(`gpu encode: kernels ${enc.kernelGBs.toFixed(2)} GB/s, e2e ${enc.e2eGBs.toFixed(2)} GB/s`);

  // decode
  const dtimes: number[] = [];
  let dlast = await g.decodeManyWithInfo(streams, { maxElements: 2 ** 30 }, run);
  for (let k = 0; k < reps && performance.now() - started < budgetMs; k++) {
    const s = performance.now();
    dlast = await g.decodeManyWithInfo(streams, { maxElements: 2 ** 30 }, run);
    dtimes.push(performance.now() - s);
  }
  const dtimed = await g.decodeManyWithInfo(streams, { maxElements: 2 ** 30 }, { ...run, timestamps: true });
  const dkMs = dtimed.batches.reduce((s, b) => s + b.timing.gpuMs, 0);
  const de2e = median(dtimes);
  dec = {
    phases: phases(dlast.batches, { parse: dlast.parseMs }),
    kernelMs: dkMs,
    kernelGBs: gbs(fp16Bytes, dkMs),
    source: dtimed.batches[0]?.timing.source ?? "none",
    e2eMs: de2e,
    e2eGBs: gbs(fp16Bytes, de2e),
    batches: dtimed.batches.length,
    submissions: dtimed.batches.reduce((s, b) => s + b.timing.submissions, 0),
  };
  console.error(`gpu decode: kernels ${dec.kernelGBs.toFixed(2)} GB/s, e2e ${dec.e2eGBs.toFixed(2)} GB/s`);

  // identity and bound on the CPU-checked frames
  let bytesSame = true, bitsSame = true, worst = 0;
  for (const i of pick) {
    const c = cpuStreams.get(i)!, s = streams[i];
    bytesSame &&= c.length === s.length && c.every((b, j) => b === s[j]);
    const ref = decode(c).data as Float32Array;
    const r = dlast.results[i];
    const got = r.status === "fulfilled" ? r.value.data as Float32Array : undefined;
    const x = frames[i].data as Float32Array;
    const rb = new Uint32Array(ref.buffer, ref.byteOffset, ref.length);
    const gb = got ? new Uint32Array(got.buffer, got.byteOffset, got.length) : undefined;
    bitsSame &&= gb !== undefined && rb.every((v, j) => v === gb[j]);
    const bound = mode === "rel"
      ? errorBound *
        (x.reduce((m, v) => Math.max(m, v), -Infinity) - x.reduce((m, v) => Math.min(m, v), Infinity))
      : errorBound;
    for (let j = 0; j < x.length; j++) worst = Math.max(worst, Math.abs(ref[j] - x[j]) / bound);
  }

  // host ↔ GPU copies alone, on one batch's worth of the same bytes
  const dev = handle.device;
  const upBytes = Math.min(4 * values, maxBatchBytes, dev.limits.maxBufferSize);
  const buf = dev.createBuffer({ size: upBytes, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
  const up: number[] = [], upMapped: number[] = [], down: number[] = [];
  for (let k = 0; k < reps; k++) {
    // the other way up: a buffer mapped at creation, filled in place, unmapped
    const m = performance.now();
    const mapped = dev.createBuffer({ size: upBytes, usage: GPUBufferUsage.STORAGE, mappedAtCreation: true });
    const range = new Uint8Array(mapped.getMappedRange());
    let filled = 0;
    for (const t of frames) {
      if (filled + t.data.byteLength > upBytes) break;
      range.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), filled);
      filled += t.data.byteLength;
    }
    mapped.unmap();
    dev.queue.submit([]);
    await dev.queue.onSubmittedWorkDone();
    upMapped.push(gbs(filled, performance.now() - m));
    mapped.destroy();
    let s = performance.now();
    let at = 0;
    for (const t of frames) {
      if (at + t.data.byteLength > upBytes) break;
      dev.queue.writeBuffer(buf, at, t.data as Float32Array<ArrayBuffer>);
      at += t.data.byteLength;
    }
    dev.queue.submit([]);
    await dev.queue.onSubmittedWorkDone();
    up.push(gbs(at, performance.now() - s));
    s = performance.now();
    const staging = dev.createBuffer({
      size: upBytes,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const ce = dev.createCommandEncoder();
    ce.copyBufferToBuffer(buf, 0, staging, 0, upBytes);
    dev.queue.submit([ce.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    new Uint8Array(upBytes).set(new Uint8Array(staging.getMappedRange()));
    staging.unmap();
    staging.destroy();
    down.push(gbs(upBytes, performance.now() - s));
  }
  buf.destroy();

  doc.gpu = {
    ratio: fp16Bytes / compressed,
    compressedMiB: compressed / 2 ** 20,
    framesOnGpu: onGpu,
    fallbacks,
    encode: enc,
    decode: dec,
    transfers: {
      bytes: upBytes,
      upGBsRaw: median(up),
      upMappedGBsRaw: median(upMapped),
      downGBsRaw: median(down),
      note:
        "GB/s of bytes moved: up by writeBuffer (the codec's way) and by mappedAtCreation; down by copy, map, copy out",
    },
    checked: {
      frames: pick.length,
      byteIdentical: bytesSame,
      bitIdentical: bitsSame,
      maxErrOverBound: worst,
    },
  };
}
clearTimeout(watchdog);
await writeResults();
codec?.destroy();

const f = (x: number | undefined, d = 2) => x === undefined ? "—" : x.toFixed(d);
const gdoc = doc.gpu as
  | {
    ratio: number;
    transfers: { upGBsRaw: number; upMappedGBsRaw: number; downGBsRaw: number };
    checked: Record<string, unknown>;
  }
  | undefined;
console.log(
  `\nFast codec, ${frames.length} frames of [${tokens}, ${headDim}] f32 (${
    (fp16Bytes / 2 ** 20).toFixed(0)
  } MiB fp16), eb ${errorBound} ${mode} — ${codec?.adapter.description ?? `no WebGPU (${gpuError})`}\n`,
);
console.log("| | ratio | kernels GB/s | kernels ms | e2e GB/s | e2e ms | batches / round trips |");
console.log("|---|---|---|---|---|---|---|");
console.log(
  `| GPU encode | ${f(gdoc?.ratio)} | ${f(enc?.kernelGBs)} | ${f(enc?.kernelMs, 1)} | ${f(enc?.e2eGBs)} | ${
    f(enc?.e2eMs, 1)
  } | ${enc ? `${enc.batches} / ${enc.submissions}` : "—"} |`,
);
console.log(
  `| GPU decode | | ${f(dec?.kernelGBs)} | ${f(dec?.kernelMs, 1)} | ${f(dec?.e2eGBs)} | ${
    f(dec?.e2eMs, 1)
  } | ${dec ? `${dec.batches} / ${dec.submissions}` : "—"} |`,
);
interface CudaEncodeRow {
  kernelGBs: number;
  kernelMs: number;
  e2eGBs: number;
  e2eMs: number;
  timing: { subBatches: number };
}
const cu = doc.cuda as
  | {
    ratio: number;
    encode: {
      kernelGBs: number;
      kernelMs: number;
      e2eGBs: number;
      e2eMs: number;
      timing: { subBatches: number };
    };
    decode: { kernelGBs: number; kernelMs: number; e2eGBs: number; e2eMs: number };
    decodeInto: { kernelGBs: number; kernelMs: number; e2eGBs: number; e2eMs: number };
    encodeInto: CudaEncodeRow;
    encodeF16: CudaEncodeRow & { ratio: number };
    encodeF16Into: CudaEncodeRow;
  }
  | undefined;
if (cu?.encode) {
  console.log(
    `| CUDA encode, new memory | ${f(cu.ratio)} | ${f(cu.encode.kernelGBs)} | ${f(cu.encode.kernelMs, 1)} | ${
      f(cu.encode.e2eGBs)
    } | ${f(cu.encode.e2eMs, 1)} | ${cu.encode.timing.subBatches} sub-batches / 1 call |`,
  );
  console.log(
    `| CUDA encode, into a reused output | | ${f(cu.encodeInto.kernelGBs)} | ${
      f(cu.encodeInto.kernelMs, 1)
    } | ${f(cu.encodeInto.e2eGBs)} | ${
      f(cu.encodeInto.e2eMs, 1)
    } | ${cu.encodeInto.timing.subBatches} sub-batches / 1 call |`,
  );
  // GB/s of fp16 input bytes, as every row: here the bytes the call is given
  const f16Rows: [string, CudaEncodeRow, string][] = [
    ["CUDA encode, fp16 input, new memory", cu.encodeF16, f(cu.encodeF16.ratio)],
    ["CUDA encode, fp16 input, into a reused output", cu.encodeF16Into, ""],
  ];
  for (const [name, r, ratio] of f16Rows) {
    console.log(
      `| ${name} | ${ratio} | ${f(r.kernelGBs)} | ${f(r.kernelMs, 1)} | ${f(r.e2eGBs)} | ${
        f(r.e2eMs, 1)
      } | ${r.timing.subBatches} sub-batches / 1 call |`,
    );
  }
  console.log(
    `| CUDA decode, new memory | | ${f(cu.decode.kernelGBs)} | ${f(cu.decode.kernelMs, 1)} | ${
      f(cu.decode.e2eGBs)
    } | ${f(cu.decode.e2eMs, 1)} | 1 / 1 call |`,
  );
  console.log(
    `| CUDA decode, into reused outputs | | ${f(cu.decodeInto.kernelGBs)} | ${
      f(cu.decodeInto.kernelMs, 1)
    } | ${f(cu.decodeInto.e2eGBs)} | ${f(cu.decodeInto.e2eMs, 1)} | 1 / 1 call |`,
  );
}
console.log(`| CPU encode (${cpu.frames} frames) | ${f(cpu.ratio)} | | | ${f(cpu.encGBs, 3)} | | |`);
console.log(`| CPU decode | | | | ${f(cpu.decGBs, 3)} | | |`);
if (enc && dec) {
  console.log(
    `\nhost ms by phase, encode ${JSON.stringify(enc.phases)}; decode ${JSON.stringify(dec.phases)}`,
  );
}
if (gdoc) {
  console.log(
    `\nkernel time: ${enc?.source}; host→GPU ${f(gdoc.transfers.upGBsRaw)} GB/s (writeBuffer), ${
      f(gdoc.transfers.upMappedGBsRaw)
    } GB/s (mapped at creation), GPU→host ${f(gdoc.transfers.downGBsRaw)} GB/s (bytes moved); checked ${
      JSON.stringify(gdoc.checked)
    }`,
  );
}
console.log(`\nJSON: ${outPath}`);
