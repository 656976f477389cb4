import { assert, assertEquals, assertRejects } from "@std/assert";
import { EMBEDDED_MODEL_DIR } from "../../../shared/config/mod.ts";
import { CheckpointFormatError, Model } from "../../../shared/model/mod.ts";
import { loadHfCheckpoint } from "../../../shared/model/hf_checkpoint.ts";
import { INT8_ROWS_METHOD } from "../../../shared/model/int8_weights.ts";
import { parseSafetensors, writeSafetensors } from "../../../shared/safetensors/mod.ts";
import { run } from "./quantize_weights.ts";

const quiet = async <T>(f: () => Promise<T>): Promise<T> => {
  const log = console.log;
  console.log = () => {};
  try {
    return await f();
  } finally {
    console.log = log;
  }
};

const dir = await Deno.makeTempDir();
const out = `${dir}/int8`;
await quiet(() => run(["--model", EMBEDDED_MODEL_DIR, "--out", out]));

Deno.test("quantize-weights halves the weights and keeps every other file byte for byte", async () => {
  const before = (await Deno.stat(`${EMBEDDED_MODEL_DIR}/model.safetensors`)).size;
  const after = (await Deno.stat(`${out}/model.safetensors`)).size;
  assert(after < before * 0.52, `${after} of ${before} bytes`);
  for (const f of ["tokenizer.json", "tokenizer_config.json", "kv_predictor.bin", "generation_config.json"]) {
    assertEquals(await Deno.readFile(`${out}/${f}`), await Deno.readFile(`${EMBEDDED_MODEL_DIR}/${f}`), f);
  }
  const cfg = JSON.parse(await Deno.readTextFile(`${out}/config.json`));
  assertEquals(cfg.quantization_config.quant_method, INT8_ROWS_METHOD);
  const st = parseSafetensors(await Deno.readFile(`${out}/model.safetensors`));
  assertEquals(st.entries.get("model.layers.0.self_attn.q_proj.weight")?.dtype, "I8");
  assertEquals(st.entries.get("model.layers.0.self_attn.q_proj.weight_scale")?.dtype, "F32");
  assertEquals(st.entries.get("model.norm.weight")?.dtype, "F16"); // vectors keep their dtype
});

Deno.test("an int8 folder loads to within half a step of the fp16 weights, and predicts the same token", async () => {
  const a = await loadHfCheckpoint(EMBEDDED_MODEL_DIR);
  const b = await loadHfCheckpoint(out);
  assertEquals(b.config.headDim, a.config.headDim);
  assertEquals(b.weights.finalNorm, a.weights.finalNorm);
  const { dim } = a.config;
  const within = (x: Float32Array, y: Float32Array, cols: number, what: string) => {
    for (let r = 0; r < x.length / cols; r++) {
      let max = 0, err = 0;
      for (let i = r * cols; i < (r + 1) * cols; i++) {
        max = Math.max(max, Math.abs(x[i]));
        err = Math.max(err, Math.abs(x[i] - y[i]));
      }
      assert(err <= (max / 127) * 0.5 * (1 + 1e-5), `${what} row ${r}: error ${err}, range ${max}`);
    }
  };
  within(a.weights.tokEmb, b.weights.tokEmb, dim, "embeddings");
  a.weights.layers.forEach((l, i) => {
    within(l.wq, b.weights.layers[i].wq, dim, `layer ${i} wq`);
    within(l.w2, b.weights.layers[i].w2, a.config.hiddenDim, `layer ${i} w2`);
  });

  const models = [await Model.load({ modelPath: EMBEDDED_MODEL_DIR }), await Model.load({ modelPath: out })];
  try {
    const ids = models[0].tokenizer.encode("In the beginning God created the heaven and the earth. And the");
    const [x, y] = await Promise.all(models.map((m) => m.prefill(ids)));
    const argmax = (l: Float32Array) => l.indexOf(Math.max(...l));
    assertEquals(argmax(y.logits), argmax(x.logits));
  } finally {
    await Promise.all(models.map((m) => m.close()));
  }
});

Deno.test("the loader refuses I8 tensors the config does not declare, and missing scales", async () => {
  const bad = `${dir}/bad`;
  await Deno.mkdir(bad);
  const cfg = JSON.parse(await Deno.readTextFile(`${out}/config.json`));
  const st = parseSafetensors(await Deno.readFile(`${out}/model.safetensors`));
  await Deno.copyFile(`${out}/tokenizer.json`, `${bad}/tokenizer.json`);

  delete cfg.quantization_config;
  await Deno.writeTextFile(`${bad}/config.json`, JSON.stringify(cfg));
  await Deno.copyFile(`${out}/model.safetensors`, `${bad}/model.safetensors`);
  await assertRejects(() => loadHfCheckpoint(bad), CheckpointFormatError, "declares no quantization_config");

  cfg.quantization_config = { quant_method: INT8_ROWS_METHOD };
  await Deno.writeTextFile(`${bad}/config.json`, JSON.stringify(cfg));
  const missing = "model.layers.1.mlp.up_proj.weight_scale";
  const kept = Object.fromEntries(
    [...st.entries.values()].filter((e) => e.name !== missing)
      .map((e) => [e.name, { stDtype: e.dtype, shape: e.shape, bytes: st.bytes(e.name) }]),
  );
  await Deno.writeFile(`${bad}/model.safetensors`, writeSafetensors(kept));
  await assertRejects(() => loadHfCheckpoint(bad), CheckpointFormatError, missing);

  cfg.quantization_config = { quant_method: "awq" };
  await Deno.writeTextFile(`${bad}/config.json`, JSON.stringify(cfg));
  await assertRejects(() => loadHfCheckpoint(bad), CheckpointFormatError, "awq");
});

Deno.test("quantize-weights refuses a quantised input, a non-empty or unusable output, and a missing model with typed errors", async () => {
  await assertRejects(() => run(["--model", out, "--out", `${dir}/again`]), Error, "already quantised");
  await assertRejects(() => run(["--model", EMBEDDED_MODEL_DIR, "--out", out]), Error, "not empty");
  await assertRejects(() => run(["--model", EMBEDDED_MODEL_DIR]), Error, "--out");
  await assertRejects(
    () => run(["--model", `${dir}/none`, "--out", `${dir}/x`]),
    CheckpointFormatError,
    "cannot read",
  );
  await assertRejects(
    () => run(["--model", EMBEDDED_MODEL_DIR, "--out", `${out}/config.json`]),
    Error,
    "cannot be used",
  );
});

globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
