import { assert, assertEquals, assertRejects } from "@std/assert";
import { encode, type EncodeOptions, type Tensor } from "../../shared/codec/mod.ts";
import { DEFAULTS } from "../../shared/config/mod.ts";
import type { KvSettings } from "../../shared/handoff/contract.ts";
import { CompressionJob, cpuFrameEncoder, type FrameEncoder } from "../../shared/pipeline/compress_stage.ts";
import { decodeLayerBundle } from "../../shared/pipeline/decode_stage.ts";
import { defaultKvSettings } from "../../shared/pipeline/kv_settings.ts";
import { cpuBackend } from "../../shared/codec/webgpu/mod.ts";
import { gpuBatchEncoder, gpuFrameEncoder, selectCodecBackend } from "./codec_device.ts";

const shape = { requestId: "r", nLayers: 2, nKvHeads: 2, nPos: 40, headDim: 64 };
const kv = (over: Partial<KvSettings>): KvSettings => ({ ...defaultKvSettings(DEFAULTS.kv), ...over });
const expect = { nLayers: 2, nKvHeads: 2, headDim: 64, maxElements: 1 << 20 };

function job(settings: KvSettings, seed: number): CompressionJob {
  let s = seed;
  const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  const n = shape.nKvHeads * shape.nPos * shape.headDim;
  const metric = Float32Array.from(
    { length: shape.nLayers * shape.nKvHeads * shape.nPos },
    () => Math.abs(rnd()),
  );
  const layers = [0, 1].map(() => ({
    keys: Float32Array.from({ length: n }, (_, i) => Math.sin(i / 50) + 0.1 * rnd()),
    values: Float32Array.from({ length: n }, rnd),
  }));
  return new CompressionJob("r", settings, { ...shape, layers, metric });
}

/** The bundles a job gives with `encoder`, and the frames each encoder call took. */
async function bundles(j: CompressionJob, encoder: FrameEncoder) {
  const calls: string[][] = [];
  const watched: FrameEncoder = {
    ...encoder,
    encodeFrames(frames, opts) {
      calls.push(frames.map((f) => `${f.layer}.${f.head}.${f.role}`));
      return encoder.encodeFrames(frames, opts);
    },
  };
  return { out: await j.run(watched, () => {}), calls };
}

Deno.test("gpuFrameEncoder() over the CPU backend gives the CPU codec's bundles byte for byte, all layers in one call", async () => {
  for (
    const settings of [kv({ codec: "kvsort", errorBound: 1e-2 }), kv({ codec: "zstd", evictionRate: 2 })]
  ) {
    const cpu = await bundles(job(settings, 7), cpuFrameEncoder);
    const batched = await bundles(job(settings, 7), gpuFrameEncoder(cpuBackend()));
    assertEquals(batched.out.encoded, cpu.out.encoded);
    assertEquals(batched.out.stats.wireBytes, cpu.out.stats.wireBytes);
    assertEquals(cpu.calls.length, 2);
    assertEquals(batched.calls.length, 1);
  }
});

Deno.test({
  name: "gpuFrameEncoder() on the WebGPU backend gives the CPU's bundles byte for byte",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const backend = await selectCodecBackend("webgpu", { timeoutMs: 20_000 });
    try {
      assertEquals(backend.kind, "webgpu");
      for (const frames of ["head", "layer"] as const) {
        const settings = kv({ codec: "kvsort", errorBound: 1e-2, errorMode: "rel", frames, evictionRate: 1 });
        const cpu = (await bundles(job(settings, 3), cpuFrameEncoder)).out;
        const { out: gpu, calls } = await bundles(job(settings, 3), gpuFrameEncoder(backend));
        // every GPU decision is the CPU's, so the bundles are the CPU's byte for byte
        assertEquals(gpu.encoded, cpu.encoded, `${frames} batched`);
        assertEquals(calls.flat().length, frames === "head" ? 8 : 4);
        // the fast codec on the same device: the CPU's bundles too, layer groups per call
        const fastSettings = kv({
          codec: "fast",
          errorBound: 1e-2,
          errorMode: "rel",
          frames,
          evictionRate: 1,
        });
        const fastCpu = (await bundles(job(fastSettings, 3), cpuFrameEncoder)).out;
        const fastGpu = await bundles(
          job(fastSettings, 3),
          gpuFrameEncoder(backend, console.error, { codec: "fast", fastLayersPerCall: 1 }),
        );
        assertEquals(fastGpu.out.encoded, fastCpu.encoded, `${frames} fast`);
        assertEquals(fastGpu.calls.length, 2);
        for (let l = 0; l < 2; l++) {
          const a = decodeLayerBundle(gpu.encoded[l], expect), b = decodeLayerBundle(cpu.encoded[l], expect);
          for (let h = 0; h < 2; h++) {
            assertEquals(a.heads[h].keys, b.heads[h].keys, `${frames} l${l} h${h}`);
            assertEquals(a.heads[h].values, b.heads[h].values, `${frames} l${l} h${h}`);
          }
        }
      }
    } finally {
      backend.destroy();
    }
  },
});

Deno.test("gpuBatchEncoder() encodes a batch on the CPU when the GPU fails, says so once, and passes bad options on", async () => {
  const lines: string[] = [];
  const broken = {
    ...cpuBackend(),
    kind: "webgpu" as const,
    encodeMany: () => Promise.reject(new Error("device lost")),
  };
  const enc = gpuBatchEncoder(broken, (l) => lines.push(l));
  const t = { dtype: "f32" as const, shape: [4, 8], data: new Float32Array(32).fill(1) };
  const o = { codec: "kvsort" as const, errorBound: 1e-2 };
  for (let i = 0; i < 2; i++) {
    assertEquals(await enc.encodeMany([t, t], [o, o]), [encode(t, o), encode(t, o)]);
  }
  assertEquals(lines.length, 1);
  assert(lines[0].includes("device lost"));
  const bad = gpuBatchEncoder({ ...broken, encodeMany: () => Promise.reject(new RangeError("bad bound")) });
  await assertRejects(() => bad.encodeMany([t], [o]), RangeError);
});

Deno.test("gpuBatchEncoder({ coalesce }) shares batches between concurrent requests and keeps each one's failures its own; the default does not", async () => {
  const lines: string[] = [];
  const batches: number[] = [];
  const fake = {
    ...cpuBackend(),
    kind: "webgpu" as const,
    encodeMany: (frames: Tensor[], opts: EncodeOptions | EncodeOptions[]) => {
      batches.push(frames.length);
      const o = opts as EncodeOptions[];
      if (o.some((x) => x.errorBound! < 0)) return Promise.reject(new RangeError("bad bound"));
      if (frames.some((t) => t.data[0] === 13)) return Promise.reject(new Error("device lost"));
      return Promise.resolve(frames.map((t, i) => encode(t, o[i])));
    },
  };
  const enc = gpuBatchEncoder(fake, (l) => lines.push(l), { coalesce: true });
  const t = (id: number): Tensor => ({ dtype: "f32", shape: [4, 8], data: new Float32Array(32).fill(id) });
  const o: EncodeOptions = { codec: "kvsort", errorBound: 1e-2 };
  const reqs = [[1, 2], [3, 4, 5], [6], [7, 13], [8, 9]].map((ids) => ids.map(t));
  const bad = enc.encodeMany([t(10), t(11)], [o, { ...o, errorBound: -1 }]);
  const got = reqs.map((frames) => enc.encodeMany(frames, frames.map(() => o)));
  await assertRejects(() => bad, RangeError);
  for (const [r, frames] of reqs.entries()) assertEquals(await got[r], frames.map((f) => encode(f, o)));
  // the bad request alone, then the five that arrived meanwhile in one batch (retried frame by frame)
  assertEquals(batches.slice(0, 3), [2, 1, 1]);
  assertEquals(batches[3], 10);
  assertEquals(batches.length, 4 + 10);
  assertEquals(lines.length, 1);
  assert(lines[0].includes("device lost"));
  const alone = gpuBatchEncoder(fake, () => {});
  batches.length = 0;
  await Promise.all(reqs.slice(0, 3).map((frames) => alone.encodeMany(frames, frames.map(() => o))));
  assertEquals(batches, [2, 3, 1]);
});
