/**
 * Format compatibility of the WebGPU codec with the CPU codec, on whatever adapter WebGPU
 * offers (Mesa's software adapter in CI): GPU streams decode with the CPU decoder, CPU
 * streams with the GPU decoder, the bound holds element-wise, specials stay bit-exact.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import {
  CorruptStreamError,
  decode,
  decodeWithInfo,
  encode,
  type EncodeOptions,
  type Tensor,
} from "../mod.ts";
import { type Dtype, fromFloat32 } from "../../dtype/mod.ts";
import { readNpy } from "../../npy/mod.ts";
import { kvFrame } from "../testdata/gen.ts";
import { HAVE_KV_SAMPLES, KV_SAMPLES_DIR } from "../../../tests/_harness/paths.ts";
import { assertBound, assertSameBits } from "../_testing.ts";
import { createGpuCodec, type GpuCodec, selectCodecBackend } from "./mod.ts";

let shared: Promise<GpuCodec> | undefined;
const gpu = () => shared ??= createGpuCodec({ timeoutMs: 20_000 });
const opts = { sanitizeResources: false, sanitizeOps: false };

/**
 * Both directions for one frame, and byte identity: every GPU decision is the CPU's (the sort
 * keys are the CPU's double sums emulated with integers, the quantizer compares ordered keys).
 */
async function roundTrips(t: Tensor, o: EncodeOptions, ctx: string, wantGpu = true): Promise<void> {
  const g = await gpu();
  const { bytes, info } = await g.encodeWithInfo(t, o, { verify: true });
  if (wantGpu) assertEquals(info.backend, "webgpu", `${ctx}: ${info.fallback}`);
  const cpuBytes = encode(t, o);
  // GPU stream -> CPU decoder
  const viaCpu = decodeWithInfo(bytes);
  assertBound(t, viaCpu.tensor, viaCpu.info.eb!, `${ctx} gpu->cpu`);
  // qfirst rebuilds each value from its own bin: the values equal the CPU stream's, whatever the sort
  const ref = decode(cpuBytes);
  assertSameBits(viaCpu.tensor, ref, `${ctx} gpu vs cpu values`);
  // CPU stream -> GPU decoder, and GPU stream -> GPU decoder
  const viaGpu = await g.decodeWithInfo(cpuBytes);
  if (wantGpu) assertEquals(viaGpu.info.backend, "webgpu", `${ctx}: ${viaGpu.info.fallback}`);
  assertSameBits(viaGpu.tensor, ref, `${ctx} cpu->gpu`);
  assertSameBits((await g.decodeWithInfo(bytes)).tensor, ref, `${ctx} gpu->gpu`);
  assert(
    bytes.length === cpuBytes.length && bytes.every((b, i) => b === cpuBytes[i]),
    `${ctx}: the stream is byte-identical to the CPU's`,
  );
}

Deno.test({
  name: "createGpuCodec() streams decode both ways over dtypes, bounds, rel/abs, k and odd shapes",
  ...opts,
  fn: async () => {
    const ebs = [1e-1, 1e-2, 1e-3];
    const ks = [1, 8, 32];
    const dtypes: Dtype[] = ["f16", "f32"];
    let trial = 0;
    for (const dtype of dtypes) {
      for (const eb of ebs) {
        for (const k of ks) {
          const mode = trial % 2 === 0 ? "rel" : "abs";
          // token counts that are not multiples of k; head_dim 64 and 128
          const [rows, cols] = trial % 2 === 0 ? [77, 64] : [45, 128];
          // specials with rel only: ±6e4 at an abs bound of 1e-3 spans more bins than a table (CPU path)
          const t = kvFrame(rows, cols, dtype, 100 + trial, mode === "rel" && trial % 4 === 0);
          const o: EncodeOptions = { codec: "kvsort", errorBound: eb, mode, indexShare: k };
          await roundTrips(t, o, `${dtype} eb ${eb} ${mode} k ${k} [${rows},${cols}]`);
          trial++;
        }
      }
    }
  },
});

Deno.test({
  name: "createGpuCodec() handles bf16, sz (no sort), auto k, lossless none and a single row",
  ...opts,
  fn: async () => {
    await roundTrips(
      kvFrame(33, 64, "bf16", 5, true),
      { codec: "kvsort", errorBound: 1e-2, indexShare: 4 },
      "bf16",
    );
    await roundTrips(kvFrame(20, 128, "f16", 6, true), { codec: "sz", errorBound: 1e-2 }, "sz");
    await roundTrips(
      kvFrame(64, 64, "f16", 7),
      { codec: "kvsort", errorBound: 1e-2, indexShare: "auto" },
      "auto",
    );
    await roundTrips(
      kvFrame(9, 64, "f32", 8),
      { codec: "kvsort", errorBound: 1e-3, lossless: "none" },
      "none",
    );
    await roundTrips(
      kvFrame(1, 128, "f16", 9),
      { codec: "kvsort", errorBound: 1e-2, indexShare: 32 },
      "1 row",
    );
  },
});

Deno.test({
  name: "createGpuCodec() keeps NaN, ±Inf, -0 and huge values exact, and handles constant frames",
  ...opts,
  fn: async () => {
    for (const dtype of ["f16", "f32"] as Dtype[]) {
      const v = new Float32Array(40 * 64).map((_, i) => Math.sin(i / 9));
      const big = dtype === "f32" ? 3e38 : 6e4;
      [NaN, Infinity, -Infinity, -0, 0, 1e-40, big, -big].forEach((s, j) => v[j * 97 + 3] = s);
      await roundTrips(
        fromFloat32(v, [40, 64], dtype),
        { codec: "kvsort", errorBound: 1e-2 },
        `${dtype} specials`,
      );
      const c = fromFloat32(new Float32Array(50 * 64).fill(0.3), [50, 64], dtype);
      // rel on a constant frame: the bound is 0, every value an exception
      await roundTrips(c, { codec: "kvsort", errorBound: 1e-2, mode: "rel" }, `${dtype} constant rel`);
      // abs: one bin, one symbol, no Huffman bits at all
      await roundTrips(
        c,
        { codec: "kvsort", errorBound: 1e-2, mode: "abs", indexShare: 8 },
        `${dtype} constant abs`,
      );
      const nan = fromFloat32(new Float32Array(16 * 64).fill(NaN), [16, 64], dtype);
      await roundTrips(nan, { codec: "kvsort", errorBound: 1e-2 }, `${dtype} all NaN`);
    }
  },
});

const haveSamples = HAVE_KV_SAMPLES;

Deno.test({
  name: `createGpuCodec() on real KV samples: per-head and layer-wide frames, fp32 and fp16${
    haveSamples ? "" : " (skipped: no KV samples at ../shared/kv-samples)"
  }`,
  ignore: !haveSamples,
  ...opts,
  fn: async () => {
    for (const s of ["00", "03"]) {
      for (const kv of ["k", "v"]) {
        const a = readNpy(Deno.readFileSync(`${KV_SAMPLES_DIR}/stories260K/sample-${s}.${kv}.npy`));
        const [, P, H, D] = a.shape, x = a.data as Float32Array;
        const layer = 2;
        const wide = new Float32Array(P * H * D);
        wide.set(x.subarray(layer * P * H * D, (layer + 1) * P * H * D)); // [position, kv_head * head_dim]
        const head = new Float32Array(P * D);
        for (let p = 0; p < P; p++) head.set(wide.subarray(p * H * D, p * H * D + D), p * D);
        for (const dtype of ["f32", "f16"] as Dtype[]) {
          for (const [eb, k] of [[1e-2, 8], [1e-3, 32]] as const) {
            const o: EncodeOptions = { codec: "kvsort", errorBound: eb, mode: "rel", indexShare: k };
            await roundTrips(fromFloat32(head, [P, D], dtype), o, `sample ${s}.${kv} head ${dtype} ${eb}`);
            await roundTrips(
              fromFloat32(wide, [P, H * D], dtype),
              o,
              `sample ${s}.${kv} layer ${dtype} ${eb}`,
            );
          }
        }
      }
    }
  },
});

Deno.test({
  name: "createGpuCodec() leaves other predictors and codecs, and very wide bin ranges, to the CPU codec",
  ...opts,
  fn: async () => {
    const g = await gpu();
    const wide = kvFrame(45, 128, "f16", 3, true); // ±6e4 at eb 1e-3 abs: 6e7 bins
    const w = await g.encodeWithInfo(wide, { codec: "kvsort", errorBound: 1e-3, mode: "abs" });
    assertEquals([w.info.backend, w.info.fallback], ["cpu", "bin range wider than a table"]);
    const t = kvFrame(30, 64, "f16", 4, true);
    for (
      const o of [{ codec: "kvsort", predictor: "prev" }, { codec: "kivi4" }, {
        codec: "zstd",
      }] as EncodeOptions[]
    ) {
      const { bytes, info } = await g.encodeWithInfo(t, o);
      assertEquals(info.backend, "cpu");
      assertEquals(bytes, encode(t, o));
      assertSameBits(await g.decode(bytes), decode(bytes), o.codec);
    }
    const empty: Tensor = { dtype: "f32", shape: [0, 64], data: new Float32Array(0) };
    assertEquals((await g.decode(await g.encode(empty, { codec: "kvsort" }))).shape, [0, 64]);
  },
});

Deno.test({
  name: "GpuCodec.decode() rejects truncated and damaged streams like the CPU decoder",
  ...opts,
  fn: async () => {
    const g = await gpu();
    const t = kvFrame(24, 64, "f16", 12, true);
    const bytes = await g.encode(t, { codec: "kvsort", errorBound: 1e-2, lossless: "none" });
    for (const cut of [0, 5, 14, bytes.length >> 1, bytes.length - 1]) {
      await assertRejects(() => g.decode(bytes.subarray(0, cut)), CorruptStreamError);
    }
    const bad = bytes.slice();
    bad[bad.length - 3] ^= 0x10; // inside the Huffman bitstream
    let rejected = false;
    try {
      assertSameBits(await g.decode(bad), decode(bytes), "flip");
    } catch (err) {
      rejected = err instanceof CorruptStreamError;
    }
    assert(rejected, "a flipped bit is caught (digest or structure)");
    await assertRejects(() => g.decode(new Uint8Array([...bytes, 0])), CorruptStreamError, "stray");
  },
});

Deno.test({
  name: "selectCodecBackend() takes the CPU for auto on a software adapter and the adapter for webgpu",
  ...opts,
  fn: async () => {
    assertEquals((await selectCodecBackend("cpu")).kind, "cpu");
    const auto = await selectCodecBackend("auto", { timeoutMs: 20_000 });
    const forced = await selectCodecBackend("webgpu", { timeoutMs: 20_000 });
    assertEquals(forced.kind, "webgpu");
    assertEquals(auto.kind, forced.gpu!.software ? "cpu" : "webgpu");
    const t = kvFrame(16, 64, "f16", 2);
    const o: EncodeOptions = { codec: "kvsort", errorBound: 1e-2 };
    assertSameBits(
      decode(await forced.encode(t, o)),
      await auto.decode(await auto.encode(t, o)),
      "backends agree",
    );
    auto.destroy();
    forced.destroy();
    (await gpu()).destroy();
  },
});
