import { assert, assertEquals, assertThrows } from "@std/assert";
import { decode, decodeWithInfo, encode, inspect } from "../mod.ts";
import type { EncodeOptions, Tensor } from "../mod.ts";
import type { Dtype } from "../../dtype/mod.ts";
import { kvFrame, rng } from "../testdata/gen.ts";
import { assertBound } from "../_testing.ts";
import { readNpy } from "../../npy/mod.ts";
import { HAVE_KV_SAMPLES, KV_SAMPLES_DIR } from "../../../tests/_harness/paths.ts";

Deno.test("encode({ codec: 'fast' }) keeps every value within the bound over random shapes, dtypes, eb and specials", () => {
  const r = rng(77);
  const dtypes: Dtype[] = ["f32", "f16", "bf16"];
  for (let trial = 0; trial < 500; trial++) {
    const rows = Math.floor(r() * 100), cols = [1, 3, 8, 17, 64, 128][Math.floor(r() * 6)];
    const dtype = dtypes[trial % 3];
    const t = kvFrame(rows, cols, dtype, trial, r() < 0.5);
    const opts: EncodeOptions = {
      codec: "fast",
      errorBound: 10 ** (-6 + 5.5 * r()),
      mode: r() < 0.5 ? "abs" : "rel",
      fastPredictor: (["auto", "none", "delta"] as const)[Math.floor(r() * 3)],
    };
    const ctx = `trial ${trial} ${dtype} [${rows},${cols}] ${JSON.stringify(opts)}`;
    const { tensor, info } = decodeWithInfo(encode(t, opts));
    assert(info.eb !== undefined, ctx);
    assertBound(t, tensor, info.eb, ctx, { signedZero: opts.errorBound === 0 });
  }
});

Deno.test("encode({ codec: 'fast' }) with eb 0 stores everything exactly", () => {
  for (const dtype of ["f32", "f16"] as Dtype[]) {
    const t = kvFrame(40, 16, dtype, 3, true);
    assertEquals(decode(encode(t, { codec: "fast", errorBound: 0, mode: "abs" })).data, t.data);
  }
});

Deno.test("encode({ codec: 'fast' }) with a bound past fp32's range still gives a stream it decodes", () => {
  const t = kvFrame(40, 8, "f32", 4);
  const { tensor } = decodeWithInfo(encode(t, { codec: "fast", errorBound: 3e38, mode: "abs" }));
  assertBound(t, tensor, 3e38, "huge bound", { signedZero: false });
});

Deno.test("encode({ codec: 'fast' }) stores one spike per block apart and still keeps the bound", () => {
  const rows = 64, cols = 4;
  const data = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i / 9));
  data[5 * cols + 2] = 900; // one spike in block (0, 2)
  const t: Tensor = { dtype: "f32", shape: [rows, cols], data };
  const plain = encode(t, { codec: "fast", errorBound: 1e-3, mode: "abs", fastPredictor: "none" });
  const { tensor, info } = decodeWithInfo(plain);
  assertBound(t, tensor, 1e-3, "spike");
  assertEquals(info.outliers, 1);
  assert(info.stages.payload < 4 * 2 * cols * 20, `payload ${info.stages.payload} is as wide as the spike`);
});

Deno.test("encode({ codec: 'fast' }) picks delta for smooth rows and none for noise", () => {
  const rows = 256, cols = 8;
  const smooth = Float32Array.from(
    { length: rows * cols },
    (_, i) => Math.floor(i / cols) * 0.5 + (i % cols),
  );
  const r = rng(5);
  const noise = Float32Array.from({ length: rows * cols }, () => r() - 0.5);
  const pick = (data: Float32Array) =>
    inspect(
      encode({ dtype: "f32", shape: [rows, cols], data }, { codec: "fast", errorBound: 1e-3, mode: "abs" }),
    )
      .fastPredictor;
  assertEquals(pick(smooth), "delta");
  assertEquals(pick(noise), "none");
});

const haveSamples = HAVE_KV_SAMPLES;

Deno.test({
  name: `encode({ codec: 'fast' }) on a real KV sample: at least 0.8x kvsort's ratio at rel 1e-2${
    haveSamples ? "" : " (skipped: no KV samples at ../shared/kv-samples)"
  }`,
  ignore: !haveSamples,
}, () => {
  for (const role of ["k", "v"]) {
    const x = readNpy(Deno.readFileSync(`${KV_SAMPLES_DIR}/stories260K/sample-02.${role}.npy`));
    const [layers, pos, heads, dim] = x.shape;
    let fast = 0, kvsort = 0;
    for (let l = 0; l < layers; l++) {
      for (let h = 0; h < heads; h++) {
        const f = new Float32Array(pos * dim);
        for (let p = 0; p < pos; p++) {
          const at = ((l * pos + p) * heads + h) * dim;
          f.set((x.data as Float32Array).subarray(at, at + dim), p * dim);
        }
        const t: Tensor = { dtype: "f32", shape: [pos, dim], data: f };
        const fb = encode(t, { codec: "fast", errorBound: 1e-2, mode: "rel" });
        assertBound(t, decode(fb), inspect(fb).eb!, `${role} ${l}/${h}`);
        fast += fb.length;
        kvsort += encode(t, { codec: "kvsort", errorBound: 1e-2, mode: "rel", indexShare: "auto" }).length;
      }
    }
    assert(kvsort / fast >= 0.8, `${role}: fast ${fast} B against kvsort ${kvsort} B`);
  }
});

Deno.test("encode({ codec: 'fast' }) is deterministic and rejects a bad predictor", () => {
  const t = kvFrame(70, 32, "f32", 5, true);
  const opts: EncodeOptions = { codec: "fast", errorBound: 1e-3 };
  assertEquals(encode(t, opts), encode(t, opts));
  assertThrows(() => encode(t, { ...opts, fastPredictor: "lorenzo" as "none" }), RangeError);
});

Deno.test("encode({ codec: 'fp16' }) is the fp16 cast, refuses values beyond fp16's range", () => {
  const r = rng(9);
  const data = Float32Array.from({ length: 4096 }, (_, i) => (r() - 0.5) * 10 ** (i % 9 - 6));
  data[0] = NaN, data[1] = -Infinity, data[2] = -0, data[3] = 65504, data[4] = 6e-8;
  const back = decode(encode({ dtype: "f32", shape: [64, 64], data }, { codec: "fp16" }))
    .data as Float32Array;
  const ref = new Float16Array(data);
  for (let i = 0; i < data.length; i++) {
    assert(
      Object.is(back[i], ref[i]) || (Number.isNaN(back[i]) && Number.isNaN(ref[i])),
      `value ${i}: ${data[i]}`,
    );
  }
  assertThrows(
    () => encode({ dtype: "f32", shape: [1], data: new Float32Array([70000]) }, { codec: "fp16" }),
    RangeError,
    "beyond fp16",
  );
  const f16 = kvFrame(9, 8, "f16", 2, true);
  assertEquals(decode(encode(f16, { codec: "fp16" })).data, f16.data);
  const z = encode({ dtype: "f32", shape: [64, 64], data }, { codec: "fp16_zstd" });
  assertEquals(decode(z).data, back);
});
