import { assertEquals, assertRejects } from "@std/assert";
import { decode, encode, type EncodeOptions, type Tensor } from "../mod.ts";
import { kvFrame } from "../testdata/gen.ts";
import { createGpuCodec, type GpuCodec } from "./mod.ts";

let shared: Promise<GpuCodec> | undefined;
const gpu = () => shared ??= createGpuCodec({ timeoutMs: 20_000 });
const opts = { sanitizeResources: false, sanitizeOps: false };

Deno.test({
  name:
    "GpuCodec.encodeMany() gives each frame's single-encode and CPU stream, across dtypes, k and fallbacks",
  ...opts,
  fn: async () => {
    const g = await gpu();
    const cases: [Tensor, EncodeOptions][] = [
      [kvFrame(77, 64, "f16", 1), { codec: "kvsort", errorBound: 1e-2, indexShare: 1 }],
      [kvFrame(45, 128, "f32", 2), { codec: "kvsort", errorBound: 1e-3, mode: "abs", indexShare: 8 }],
      [kvFrame(33, 64, "bf16", 3, true), { codec: "kvsort", errorBound: 1e-2, indexShare: "auto" }],
      [kvFrame(20, 128, "f16", 4), { codec: "sz", errorBound: 1e-2 }],
      [kvFrame(30, 64, "f16", 5), { codec: "kvsort", predictor: "prev" }], // CPU fallback inside the batch
      [{ dtype: "f32", shape: [0, 64], data: new Float32Array(0) }, { codec: "kvsort" }], // empty: CPU
      [kvFrame(45, 128, "f16", 6, true), { codec: "kvsort", errorBound: 1e-3, mode: "abs" }], // too many bins
      [
        { dtype: "f32", shape: [50, 64], data: new Float32Array(50 * 64).fill(0.3) },
        { codec: "kvsort", errorBound: 1e-2, lossless: "none" },
      ],
      [kvFrame(1024, 64, "f16", 7), { codec: "kvsort", errorBound: 1e-2, indexShare: 32 }],
    ];
    const many = await g.encodeManyWithInfo(cases.map((c) => c[0]), cases.map((c) => c[1]));
    assertEquals(many.map((m) => m.info.backend), [
      "webgpu",
      "webgpu",
      "webgpu",
      "webgpu",
      "cpu",
      "cpu",
      "cpu",
      "webgpu",
      "webgpu",
    ]);
    for (let i = 0; i < cases.length; i++) {
      const [t, o] = cases[i];
      assertEquals(many[i].bytes, await g.encode(t, o), `frame ${i}: single GPU encode`);
      assertEquals(many[i].bytes, encode(t, o), `frame ${i}: CPU encode`);
      assertEquals(await g.decode(many[i].bytes), decode(many[i].bytes), `frame ${i}: decoders agree`);
    }
    // one options object for every frame
    const same = cases.slice(0, 3).map((c) => c[0]);
    const o: EncodeOptions = { codec: "kvsort", errorBound: 1e-2, indexShare: 8 };
    assertEquals(await g.encodeMany(same, o), same.map((t) => encode(t, o)));
    assertEquals(await g.encodeMany([], o), []);
  },
});

Deno.test({
  name: "GpuCodec.encodeMany() submits three times for a whole batch of GPU frames",
  ...opts,
  fn: async () => {
    const g = await gpu();
    const frames = Array.from({ length: 8 }, (_, i) => kvFrame(64, 64, "f16", 20 + i));
    const o: EncodeOptions = { codec: "kvsort", errorBound: 1e-2, indexShare: 8 };
    const submit = GPUQueue.prototype.submit;
    let submits = 0;
    GPUQueue.prototype.submit = function (this: GPUQueue, buffers: GPUCommandBuffer[]) {
      submits++;
      return submit.call(this, buffers);
    };
    try {
      assertEquals(await g.encodeMany(frames, o), frames.map((t) => encode(t, o)));
      assertEquals(submits, 3);
    } finally {
      GPUQueue.prototype.submit = submit;
    }
  },
});

Deno.test({
  name: "GpuCodec.encodeMany() rejects bad options like encode() and keeps working after",
  ...opts,
  fn: async () => {
    const g = await gpu();
    const t = kvFrame(16, 64, "f16", 9);
    await assertRejects(
      () => g.encodeMany([t, t], [{ codec: "kvsort" }, { codec: "kvsort", errorBound: -1 }]),
      RangeError,
    );
    await assertRejects(() => g.encodeMany([t, t], [{ codec: "kvsort" }]), TypeError);
    assertEquals(await g.encodeMany([t], { codec: "kvsort" }), [encode(t, { codec: "kvsort" })]);
    g.destroy();
  },
});
