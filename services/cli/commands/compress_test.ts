import { assertEquals, assertRejects } from "@std/assert";
import { KvrelayError } from "../../../shared/errors.ts";
import { writeNpy } from "../../../shared/npy/mod.ts";
import { inspect } from "../../../shared/codec/mod.ts";
import { run } from "./compress.ts";

Deno.test("compress refuses an option the codec does not have, or does not know, by name", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = Float32Array.from({ length: 64 * 8 }, (_, i) => Math.floor(i / 8) * 0.25 + (i % 8));
    await Deno.writeFile(`${dir}/k.npy`, writeNpy({ dtype: "f32", shape: [64, 8], data }));
    const base = ["--in", `${dir}/k.npy`, "--out", `${dir}/k.kvz`];
    for (
      const [extra, param] of [
        [["--codec", "fast", "--index-share", "4"], "index-share"],
        [["--codec", "fp16", "--error-bound", "0.01"], "error-bound"],
        [["--codec", "kvsort", "--fast-predictor", "delta"], "fast-predictor"],
        [["--codec", "fast", "--role", "value"], "role"],
        [["--codec", "fast", "--no-such-option", "1"], "no-such-option"],
      ] as const
    ) {
      const err = await assertRejects(() => run([...base, ...extra]), KvrelayError);
      assertEquals(err.param, param);
    }
    assertEquals(
      await run([...base, "--codec", "fast", "--fast-predictor", "delta", "--error-bound", "1e-3"]),
      0,
    );
    assertEquals(inspect(await Deno.readFile(`${dir}/k.kvz`)).fastPredictor, "delta");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
