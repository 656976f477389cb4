import { assertEquals, assertRejects } from "@std/assert";
import { decode, encode, type EncodeOptions, inspect } from "../../codec/mod.ts";
import { PredictorFit } from "../../codec/predict/calibrate.ts";
import { buildCoefficientSet, registerCoefficientSet } from "../../codec/predict/coefficients.ts";
import { kvFrame } from "../../codec/testdata/gen.ts";
import type { FrameInput } from "../compress_stage.ts";
import { CodecPool } from "./codec_pool.ts";

Deno.test({
  name: "CodecPool gives the CPU codec's bytes and values, spread over its workers, and its option errors",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const pool = new CodecPool(3);
    try {
      const frames: FrameInput[] = [5, 40, 130, 7, 64, 33, 0].map((rows, i) => {
        const t = kvFrame(rows, 16, "f32", i, i % 4 !== 2); // fp16 refuses the specials past its range
        return { layer: 0, head: i, role: "key", data: t.data as Float32Array, rows, cols: 16 };
      });
      const opts: EncodeOptions[] = frames.map((_, i) => ({
        codec: (["fast", "kvsort", "fp16", "zstd"] as const)[i % 4],
        errorBound: 1e-2,
        mode: "rel",
      }));
      const want = frames.map((f, i) =>
        encode({ dtype: "f32", shape: [f.rows, f.cols], data: f.data }, opts[i])
      );
      const got = await pool.encode(frames, opts);
      assertEquals(got, want);
      const back = await pool.decode(got, 1 << 20);
      assertEquals(back.map((t) => t.data), want.map((s) => decode(s).data));
      await assertRejects(() => pool.encode([frames[1]], [{ codec: "fast", errorBound: -1 }]), RangeError);
      await assertRejects(() => pool.decode([want[1].subarray(0, 9)], 1 << 20), Error, "corrupt");
    } finally {
      pool.close();
    }
  },
});

Deno.test({
  name: "CodecPool encodes and decodes cross-channel kvsort streams with this thread's coefficient sets",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const fit = new PredictorFit(16);
    fit.add(kvFrame(60, 16, "f32", 3).data as Float32Array, 60);
    const set = registerCoefficientSet(
      buildCoefficientSet(16, [fit.solve({ role: "value", layer: 4, head: 1 })]),
    );
    const t = kvFrame(60, 16, "f32", 4);
    const frame: FrameInput = {
      layer: 4,
      head: 1,
      role: "value",
      data: t.data as Float32Array,
      rows: 60,
      cols: 16,
    };
    const o: EncodeOptions = {
      codec: "kvsort",
      predictor: "cross",
      coefficients: set,
      role: "value",
      layer: 4,
      head: 1,
    };
    const pool = new CodecPool(2);
    try {
      const [bytes] = await pool.encode([frame], [o]);
      assertEquals(bytes, encode(t, o));
      assertEquals(inspect(bytes).linear, { kind: "cross", coefficients: set.hash });
      const [back] = await pool.decode([bytes], 1 << 20);
      assertEquals(back.data, decode(bytes).data);
    } finally {
      pool.close();
    }
  },
});
