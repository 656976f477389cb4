import { assertEquals, assertRejects } from "@std/assert";
import { decode, encode, type EncodeOptions } from "../../codec/mod.ts";
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
