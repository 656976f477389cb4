/**
 * `deno task bench:codec-gpu [--label NAME] [--sizes 8192,16384,32768,65536] [--ks 8,32]
 * [--budget-s 100] [--out PATH]`: KVSort encode/decode speed of the WebGPU codec beside
 * the CPU codec on the same head_dim-128 fp16 frames (KV-like synthetic, eb 1e-2 rel).
 * GPU time is the sum of compute-pass durations from timestamp queries when the adapter
 * offers 'timestamp-query' (else submit → onSubmittedWorkDone wall time per submit);
 * end-to-end time is the whole call from host arrays to stream bytes (upload, CPU stages,
 * read-back). GB/s are of fp16 input bytes. Every GPU stream is decoded by the CPU decoder
 * and checked element-wise against the bound. Prints a markdown table and writes JSON to
 * out/bench/codec_gpu_<label>.json (or `--out`) with the adapter's description.
 *
 * Built to run unattended on a GPU host without network: no downloads, an overall time
 * budget (sizes left when it runs out are skipped and listed), a watchdog that writes what
 * it has if WebGPU hangs, and the CPU columns still filled when no adapter answers.
 *
 * The service-like row (`--service-frames 32`, 0 to skip): what the compression service
 * encodes for one request — 32 frames of [1024, 64] fp16 (kvrelay-tiny: layers × KV heads
 * × K and V), eb 1e-2 rel, k 8 — end to end per batch: the CPU codec frame by frame, the
 * GPU codec frame by frame, and the GPU codec with `encodeMany` (one submission per stage).
 * Then `--concurrent 8` requests (0 to skip) of those 32 frames each, all started at once:
 * per-request ms from start to its streams (mean) and the wall time for all, for the CPU
 * codec (requests run one after another on the one thread, as in the service), the GPU
 * codec with one `encodeMany` per request (they queue on the device), and the GPU codec
 * behind `coalesce` (the compression service's path: frames of requests that arrive while
 * a batch runs share the next batch).
 * @module
 */
import { defaultOut, exitOnHelp } from "./_cli.ts";
import { decode, decodeWithInfo, encode, type EncodeOptions, type Tensor } from "../../shared/codec/mod.ts";
import { toFloat32 } from "../../shared/dtype/mod.ts";
import { kvFrame } from "../../shared/codec/testdata/gen.ts";
import { coalesce, createGpuCodec, type GpuCodec } from "../../shared/codec/webgpu/mod.ts";

exitOnHelp(import.meta.url);

const args = Deno.args;
const flag = (name: string, fallback: string) =>
  args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : fallback;
const sizes = flag("sizes", "8192,16384,32768,65536").split(",").map(Number);
const ks = flag("ks", "8,32").split(",").map(Number);
const budgetMs = Number(flag("budget-s", "100")) * 1000;
const started = performance.now();

interface Row {
  tokens: number;
  headDim: number;
  k: number;
  errorBound: number;
  inputMB: number;
  cpu: { encGBs: number; decGBs: number; ratio: number };
  gpu?: {
    backend: string;
    encGBsGpu: number;
    encGBsE2e: number;
    decGBsGpu: number;
    decGBsE2e: number;
    ratio: number;
    byteIdentical: boolean;
    maxErrOverBound: number;
    timing: string;
  };
}

/** One request's frames, end-to-end ms per batch. */
interface ServiceRow {
  frames: number;
  shape: [number, number];
  k: number;
  cpuMs: number;
  gpuOneByOneMs?: number;
  gpuEncodeManyMs?: number;
  /** encodeMany's streams equal the CPU codec's, frame for frame. */
  byteIdentical?: boolean;
  /** `concurrent` requests of `frames` frames each, all started at once. */
  concurrent?: ConcurrentRow;
}

/** Per-request ms from the common start to its streams (mean over requests) and wall ms for all. */
interface Concurrent {
  meanMs: number;
  wallMs: number;
}

interface ConcurrentRow {
  requests: number;
  cpu: Concurrent;
  gpuEncodeMany?: Concurrent;
  gpuCoalesced?: Concurrent & { batches: number };
  /** Both GPU variants' streams equal the CPU codec's, request for request. */
  byteIdentical?: boolean;
}

const rows: Row[] = [];
let service: ServiceRow | undefined;
const serviceFrames = Number(flag("service-frames", "32"));
const concurrentRequests = Number(flag("concurrent", "8"));
const skipped: string[] = [];
let gpuError: string | undefined;
let adapter: GpuCodec["adapter"] | undefined;
let software: boolean | undefined;
let label = flag("label", "");
let outPath = "";

function cpuModel(): string {
  try {
    const m = Deno.readTextFileSync("/proc/cpuinfo").match(/model name\s*:\s*(.*)/);
    return `${m?.[1] ?? "?"} (${navigator.hardwareConcurrency} threads)`;
  } catch {
    return `${navigator.hardwareConcurrency} threads`;
  }
}

async function writeResults(partial: string | undefined): Promise<void> {
  if (!label) label = `${software === false ? "gpu" : "nogpu"}-${Deno.hostname()}`;
  outPath = flag("out", defaultOut(`codec_gpu_${label.replace(/[^A-Za-z0-9_.-]+/g, "-")}.json`));
  const doc = {
    label,
    date: new Date().toISOString(),
    host: { hostname: Deno.hostname(), cpu: cpuModel(), deno: Deno.version.deno },
    adapter: adapter ? { ...adapter, software } : null,
    gpuError: gpuError ?? null,
    frames: "kvFrame synthetic [tokens, 128] fp16, eb 1e-2 rel, qfirst",
    gbsBasis: "fp16 input bytes / time; GPU = sum of compute passes (timestamp queries) or submit→done",
    partial: partial ?? null,
    skipped,
    service,
    rows,
  };
  await Deno.writeTextFile(outPath, JSON.stringify(doc, null, 2) + "\n");
}

// A hung adapter must not hang the run: write what there is and leave.
const watchdog = setTimeout(async () => {
  await writeResults("watchdog: the time budget ran out with a GPU call outstanding");
  console.error(`watchdog fired; partial results in ${outPath}`);
  Deno.exit(2);
}, budgetMs + 60_000);

/**
 * Starts `requests` calls of `fn` at once; the median over up to `reps` runs of the mean
 * per-request ms (start → its result) and of the wall ms, and the last run's results.
 */
async function timeConcurrent<T>(
  requests: number,
  fn: (r: number) => T | Promise<T>,
  reps = 3,
): Promise<Concurrent & { last: T[] }> {
  const means: number[] = [], walls: number[] = [];
  let last: T[] = [];
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) {
    const s = performance.now();
    const done: number[] = [];
    last = await Promise.all(Array.from({ length: requests }, async (_, r) => {
      await Promise.resolve(); // every request starts before any runs
      const ran = fn(r); // a synchronous request is done here, before the next one runs
      const out = ran instanceof Promise ? await ran : ran;
      done.push(performance.now() - s);
      return out;
    }));
    walls.push(performance.now() - s);
    means.push(done.reduce((a, b) => a + b, 0) / done.length);
    if (performance.now() - t0 > 20_000) break;
  }
  const median = (x: number[]) => x.sort((a, b) => a - b)[Math.floor(x.length / 2)];
  return { meanMs: median(means), wallMs: median(walls), last };
}

/** Median wall time of `fn` over up to `reps` runs (at least one, fewer past `capMs`). */
async function timeIt<T>(fn: () => T | Promise<T>, reps = 5, capMs = 3000): Promise<{ ms: number; last: T }> {
  const times: number[] = [];
  let last!: T;
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) {
    const s = performance.now();
    last = await fn();
    times.push(performance.now() - s);
    if (performance.now() - t0 > capMs) break;
  }
  times.sort((a, b) => a - b);
  return { ms: times[Math.floor(times.length / 2)], last };
}

function maxErrOverBound(t: Tensor, stream: Uint8Array): number {
  const { tensor, info } = decodeWithInfo(stream, { maxElements: 2 ** 28 });
  const x = toFloat32(t), y = toFloat32(tensor);
  let worst = 0;
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i])) continue;
    worst = Math.max(worst, Math.abs(y[i] - x[i]));
  }
  const ratio = info.eb! > 0 ? worst / info.eb! : 0;
  if (!(ratio <= 1)) throw new Error(`bound broken: max error ${worst} > ${info.eb}`);
  return ratio;
}

let gpu: GpuCodec | undefined;
try {
  gpu = await createGpuCodec({ timeoutMs: 15_000 });
  adapter = gpu.adapter;
  software = gpu.software;
} catch (err) {
  gpuError = (err as Error)?.message ?? String(err);
  console.error(`no WebGPU: ${gpuError}; CPU columns only`);
}
const gbs = (bytes: number, ms: number) => bytes / 1e9 / (ms / 1000);

outer: for (const tokens of sizes) {
  const t = kvFrame(tokens, 128, "f16", tokens);
  const bytesIn = t.data.byteLength;
  for (const k of ks) {
    if (performance.now() - started > budgetMs) {
      skipped.push(`${tokens}x128 k=${k}`);
      continue outer;
    }
    const o: EncodeOptions = { codec: "kvsort", errorBound: 1e-2, mode: "rel", indexShare: k };
    const cEnc = await timeIt(() => encode(t, o));
    const cDec = await timeIt(() => decode(cEnc.last, { maxElements: 2 ** 28 }));
    const row: Row = {
      tokens,
      headDim: 128,
      k,
      errorBound: 1e-2,
      inputMB: bytesIn / 2 ** 20,
      cpu: {
        encGBs: gbs(bytesIn, cEnc.ms),
        decGBs: gbs(bytesIn, cDec.ms),
        ratio: bytesIn / cEnc.last.length,
      },
    };
    if (gpu) {
      const g = gpu;
      await g.encodeWithInfo(t, o); // warm-up: first-use costs of this shape
      const eE2e = await timeIt(() => g.encodeWithInfo(t, o));
      const eGpu = await timeIt(() => g.encodeWithInfo(t, o, { timestamps: true }), 3);
      const stream = eE2e.last.bytes;
      const dE2e = await timeIt(() => g.decodeWithInfo(cEnc.last, { maxElements: 2 ** 28 }));
      const dGpu = await timeIt(
        () => g.decodeWithInfo(cEnc.last, { maxElements: 2 ** 28 }, { timestamps: true }),
        3,
      );
      const eT = eGpu.last.info.timing, dT = dGpu.last.info.timing;
      row.gpu = {
        backend: eE2e.last.info.backend + (eE2e.last.info.fallback ? ` (${eE2e.last.info.fallback})` : ""),
        encGBsGpu: eT ? gbs(bytesIn, eT.gpuMs) : 0,
        encGBsE2e: gbs(bytesIn, eE2e.ms),
        decGBsGpu: dT ? gbs(bytesIn, dT.gpuMs) : 0,
        decGBsE2e: gbs(bytesIn, dE2e.ms),
        ratio: bytesIn / stream.length,
        byteIdentical: stream.length === cEnc.last.length && stream.every((b, i) => b === cEnc.last[i]),
        maxErrOverBound: maxErrOverBound(t, stream),
        timing: eT ? `${eT.source}, ${eT.passes} passes` : "none",
      };
    }
    rows.push(row);
    const f = (x: number | undefined) => x === undefined ? "-" : x.toFixed(3);
    console.error(
      `${tokens}x128 k=${k}: cpu enc ${f(row.cpu.encGBs)} dec ${f(row.cpu.decGBs)} GB/s; ` +
        `gpu enc ${f(row.gpu?.encGBsGpu)} (e2e ${f(row.gpu?.encGBsE2e)}) dec ${f(row.gpu?.decGBsGpu)} ` +
        `(e2e ${f(row.gpu?.decGBsE2e)}) GB/s`,
    );
  }
}
/** `requests` requests of `frames` [1024, 64] fp16 frames each, started at once: CPU, GPU encodeMany, GPU coalesced. */
async function concurrentRow(
  requests: number,
  frames: number,
  o: EncodeOptions,
  g: GpuCodec | undefined,
): Promise<ConcurrentRow> {
  const reqs = Array.from(
    { length: requests },
    (_, r) => Array.from({ length: frames }, (_, i) => kvFrame(1024, 64, "f16", 2000 + r * frames + i)),
  );
  const opts = reqs[0].map(() => o);
  const cpu = await timeConcurrent(requests, (r) => reqs[r].map((t) => encode(t, o)));
  const row: ConcurrentRow = { requests, cpu: { meanMs: cpu.meanMs, wallMs: cpu.wallMs } };
  if (g) {
    const many = await timeConcurrent(requests, (r) => g.encodeMany(reqs[r], opts));
    let batches = 0;
    const enc = coalesce((f, os) => (batches++, g.encodeManySettled(f, os)));
    const bytes = (s: PromiseSettledResult<Uint8Array>) => {
      if (s.status === "rejected") throw s.reason;
      return s.value;
    };
    const coalesced = await timeConcurrent(requests, async (r) => {
      if (r === 0) batches = 0; // count the last run's batches
      return (await enc(reqs[r], opts)).map(bytes);
    });
    const same = (a: Uint8Array[][]) =>
      a.every((req, r) =>
        req.every((b, i) => b.length === cpu.last[r][i].length && b.every((x, j) => x === cpu.last[r][i][j]))
      );
    row.gpuEncodeMany = { meanMs: many.meanMs, wallMs: many.wallMs };
    row.gpuCoalesced = { meanMs: coalesced.meanMs, wallMs: coalesced.wallMs, batches };
    row.byteIdentical = same(many.last) && same(coalesced.last);
  }
  const f = (x: Concurrent | undefined) => x ? `${x.meanMs.toFixed(1)} (wall ${x.wallMs.toFixed(1)})` : "-";
  console.error(
    `${requests} concurrent x ${frames} frames: ms per request cpu ${f(row.cpu)}, gpu encodeMany ` +
      `${f(row.gpuEncodeMany)}, gpu coalesced ${f(row.gpuCoalesced)} in ${
        row.gpuCoalesced?.batches ?? "-"
      } batches`,
  );
  return row;
}

if (serviceFrames > 0) {
  const frames = Array.from({ length: serviceFrames }, (_, i) => kvFrame(1024, 64, "f16", 1000 + i));
  const o: EncodeOptions = { codec: "kvsort", errorBound: 1e-2, mode: "rel", indexShare: 8 };
  const cpu = await timeIt(() => frames.map((t) => encode(t, o)));
  service = { frames: serviceFrames, shape: [1024, 64], k: 8, cpuMs: cpu.ms };
  if (gpu) {
    const g = gpu;
    await g.encodeMany(frames, o); // warm-up
    const one = await timeIt(async () => {
      const out: Uint8Array[] = [];
      for (const t of frames) out.push(await g.encode(t, o));
      return out;
    });
    const many = await timeIt(() => g.encodeMany(frames, o));
    service.gpuOneByOneMs = one.ms;
    service.gpuEncodeManyMs = many.ms;
    service.byteIdentical = many.last.every((b, i) =>
      b.length === cpu.last[i].length && b.every((x, j) => x === cpu.last[i][j])
    );
  }
  if (concurrentRequests > 0 && performance.now() - started < budgetMs) {
    service.concurrent = await concurrentRow(concurrentRequests, serviceFrames, o, gpu);
  } else if (concurrentRequests > 0) skipped.push(`${concurrentRequests} concurrent requests`);
  const f = (x: number | undefined) => x === undefined ? "-" : x.toFixed(1);
  console.error(
    `service-like ${serviceFrames}x[1024,64] k=8: cpu ${f(service.cpuMs)} ms, gpu one by one ` +
      `${f(service.gpuOneByOneMs)} ms, encodeMany ${f(service.gpuEncodeManyMs)} ms per batch`,
  );
}
clearTimeout(watchdog);
gpu?.destroy();
await writeResults(undefined);

const f3 = (x: number | undefined) => x === undefined ? "—" : x.toFixed(3);
console.log(
  `\nKVSort codec, GPU vs CPU — ${adapter?.description ?? `no WebGPU (${gpuError})`}; CPU: ${cpuModel()}\n`,
);
console.log(
  "| frame | k | MiB | CPU enc GB/s | CPU dec GB/s | GPU enc GB/s (kernels) | GPU enc GB/s (e2e) | " +
    "GPU dec GB/s (kernels) | GPU dec GB/s (e2e) | ratio CPU | ratio GPU | same bytes | max err / eb |",
);
console.log("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
for (const r of rows) {
  console.log(
    `| ${r.tokens}×${r.headDim} fp16 | ${r.k} | ${r.inputMB.toFixed(0)} | ${f3(r.cpu.encGBs)} | ${
      f3(r.cpu.decGBs)
    } | ` +
      `${f3(r.gpu?.encGBsGpu)} | ${f3(r.gpu?.encGBsE2e)} | ${f3(r.gpu?.decGBsGpu)} | ${
        f3(r.gpu?.decGBsE2e)
      } | ` +
      `${r.cpu.ratio.toFixed(2)} | ${r.gpu ? r.gpu.ratio.toFixed(2) : "—"} | ${
        r.gpu?.byteIdentical ?? "—"
      } | ` +
      `${r.gpu ? r.gpu.maxErrOverBound.toFixed(3) : "—"} |`,
  );
}
if (service) {
  const f1 = (x: number | undefined) => x === undefined ? "—" : x.toFixed(1);
  console.log(
    `\nService-like: ${service.frames} frames of [1024, 64] fp16, k ${service.k}, e2e ms per batch\n`,
  );
  console.log("| CPU codec | GPU frame by frame | GPU encodeMany | same bytes as CPU |");
  console.log("|---|---|---|---|");
  console.log(
    `| ${f1(service.cpuMs)} | ${f1(service.gpuOneByOneMs)} | ${f1(service.gpuEncodeManyMs)} | ${
      service.byteIdentical ?? "—"
    } |`,
  );
}
const c = service?.concurrent;
if (c) {
  const f1 = (x: number | undefined) => x === undefined ? "—" : x.toFixed(1);
  console.log(
    `\nService-like, ${c.requests} concurrent requests × ${service!.frames} frames: ms per request ` +
      `(start → its streams, mean) / wall ms for all\n`,
  );
  console.log(
    "| CPU codec | GPU encodeMany per request | GPU coalesced | coalesced batches | same bytes as CPU |",
  );
  console.log("|---|---|---|---|---|");
  const both = (x: Concurrent | undefined) => x ? `${f1(x.meanMs)} / ${f1(x.wallMs)}` : "—";
  console.log(
    `| ${both(c.cpu)} | ${both(c.gpuEncodeMany)} | ${both(c.gpuCoalesced)} | ${
      c.gpuCoalesced?.batches ?? "—"
    } | ${c.byteIdentical ?? "—"} |`,
  );
}
if (skipped.length) console.log(`\nskipped (time budget): ${skipped.join(", ")}`);
console.log(`\nJSON: ${outPath}`);
