/**
 * CPU vs WebGPU equivalence on stories260K and the embedded kvrelay-tiny: prefill logits and
 * KV, decode steps (plain and from kept KV) within a tolerance, greedy tokens identical.
 * The WebGPU cases run only where onnxruntime's WebGPU provider starts (not on Mesa 22.3's
 * lavapipe: see `device_test.ts`); the same checks run everywhere against the CPU model
 * with kept KV, the other half of the WebGPU device's code path, and against the CPU model
 * with the fused graphs (contrib ops) that WebGPU builds by default.
 *
 * Tolerance: GPU kernels sum in another order than MLAS, so fp32 results differ by rounding;
 * max |diff| ≤ 1e-3 · max(1, max |cpu|) for logits and KV. Greedy ids are compared over 24
 * tokens: a flip needs two logits within that rounding, which these prompts do not have.
 */
import { assert, assertEquals } from "@std/assert";
import { DEFAULTS } from "../config/mod.ts";
import { defaultKvSettings } from "../pipeline/kv_settings.ts";
import { runLocal } from "../pipeline/local_run.ts";
import { webgpuStarts } from "./_webgpu_probe.ts";
import { generateDense } from "./generate.ts";
import { Model, type ModelLoadOptions } from "./model.ts";
import { assertClose, TEST_MODELS } from "./_testing.ts";

const WEBGPU = await webgpuStarts();
const PROMPT = "Once upon a time, there was a little girl. Question: Tom has 12 apples.";

const assertNear = (actual: Float32Array, expected: Float32Array, what: string) =>
  assertClose(actual, expected, { tol: 1e-3, scaled: true, what });

async function compare(load: ModelLoadOptions, other: Partial<ModelLoadOptions>): Promise<void> {
  const cpu = await Model.load(load);
  const dev = await Model.load({ ...load, ...other, sessionTimeoutMs: 60_000 });
  try {
    assertEquals(dev.device, other.device ?? "cpu");
    const ids = cpu.tokenizer.encode(PROMPT);
    const [a, b] = [await cpu.prefill(ids), await dev.prefill(ids)];
    assertNear(b.logits, a.logits, "prefill logits");
    assertNear(b.metric, a.metric, "prefill metric");
    a.layers.forEach((l, i) => {
      assertNear(b.layers[i].keys, l.keys, `layer ${i} keys`);
      assertNear(b.layers[i].values, l.values, `layer ${i} values`);
    });
    // Decode steps, batch of 2 (the same prompt, one head-length apart), plain and kept.
    const H = cpu.config.nKvHeads, n = a.nPos;
    const twice = (x: Float32Array) => {
      const out = new Float32Array(2 * x.length);
      out.set(x), out.set(x, x.length);
      return out;
    };
    const past = a.layers.map((l) => ({ keys: twice(l.keys), values: twice(l.values) }));
    const pastLengths = a.layers.map(() =>
      Int32Array.from({ length: 2 * H }, (_, bh) => (bh === 1 ? n - 3 : n))
    );
    let tokens = [300, 301], positions = [n, n];
    const ref = await cpu.decode({ tokens, positions, past, pastLengths });
    const got = await dev.decode({ tokens, positions, past, pastLengths });
    assertNear(got.logits, ref.logits, "decode logits");
    got.newKeys.forEach((k, l) => assertNear(k, ref.newKeys[l], `decode new keys ${l}`));
    if (dev.keepsKv) {
      let step = await dev.decodeKeep({ tokens, positions, past, pastLengths });
      assertNear(step.logits, ref.logits, "kept decode logits, step 0");
      for (let s = 1; s < 4; s++) {
        tokens = [300 + s, 301 + s], positions = positions.map((p) => p + 1);
        step = await dev.decodeKeep({ tokens, positions, kept: step.kept });
        assert(step.logits.every(Number.isFinite), `kept step ${s} logits finite`);
      }
      step.kept.dispose();
    }
    // Greedy generation: the dense loop (plain decode) and the hand-off path (decode engine).
    const greedy = { maxTokens: 24 };
    assertEquals(
      await generateDense(dev, ids, greedy),
      await generateDense(cpu, ids, greedy),
      "generateDense",
    );
    const opts = {
      kv: defaultKvSettings({ ...DEFAULTS.kv, codec: "zstd", evictionRate: 2 }),
      sampling: { maxTokens: 24, temperature: 0, topP: 1 },
    };
    assertEquals((await runLocal(dev, ids, opts)).ids, (await runLocal(cpu, ids, opts)).ids, "runLocal");
  } finally {
    await cpu.close();
    await dev.close();
  }
}

for (const m of TEST_MODELS) {
  Deno.test(`Model with kept KV on the CPU matches the plain CPU model (${m.name})`, async () => {
    await compare(m.load, { keepKv: true });
  });
  Deno.test(`Model with fused graphs on the CPU matches the plain CPU model (${m.name})`, async () => {
    await compare(m.load, { keepKv: true, fused: true });
  });
  Deno.test({
    name: `Model on webgpu matches the CPU (${m.name})`,
    ignore: !WEBGPU.ok,
    fn: async () => await compare(m.load, { device: "webgpu" }),
  });
}
