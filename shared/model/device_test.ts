/**
 * Device selection. Whether onnxruntime's WebGPU provider starts depends on the machine:
 * its Dawn uses Vulkan only, and Mesa 22.3's lavapipe (Debian bookworm) lacks the
 * shaderUniform*ArrayDynamicIndexing features Dawn requires ("No supported adapters"), while
 * Deno's own WebGPU reaches llvmpipe through EGL. So each test asserts what this machine
 * must do either way: the clear `unavailable` error and the CPU fallback where the
 * provider does not start, the GPU where it does. CPU-vs-WebGPU equivalence is in
 * `webgpu_test.ts`.
 */
import { assert, assertEquals, assertMatch, assertRejects } from "@std/assert";
import { STORIES260K } from "../../tests/_harness/paths.ts";
import { KvrelayError } from "../errors.ts";
import { encodeModel, GraphBuilder } from "../onnx/mod.ts";
import { isSoftwareAdapter, pickDevice, probeAdapter, probeGpu, withDeadline } from "./device.ts";
import { loadCheckpoint } from "./load.ts";
import { Model } from "./model.ts";
import { createSession } from "./session.ts";
import { webgpuStarts } from "./_webgpu_probe.ts";

const WEBGPU = await webgpuStarts();
const HARDWARE = () => Promise.resolve({ found: true, description: "Test GPU", software: false });

Deno.test("isSoftwareAdapter() knows llvmpipe, lavapipe, SwiftShader and the fallback flag", () => {
  assert(isSoftwareAdapter({ description: "llvmpipe (LLVM 15.0.6, 256 bits)" }));
  assert(isSoftwareAdapter({ description: "Intel(R) UHD Graphics (lavapipe)" }));
  assert(isSoftwareAdapter({ description: "SwiftShader Device (Subzero)" }));
  assert(isSoftwareAdapter({ description: "NVIDIA H200", isFallbackAdapter: true }));
  assert(!isSoftwareAdapter({ description: "NVIDIA H200", isFallbackAdapter: false }));
});

Deno.test("withDeadline() rejects with timeout and hands a late value to onLate", async () => {
  const err = await assertRejects(() => withDeadline(new Promise(() => {}), 20, "nothing"), KvrelayError);
  assertEquals(err.code, "timeout");
  assertMatch(err.message, /nothing did not finish within 20 ms/);
  let late: number | undefined;
  const slow = new Promise<number>((r) => setTimeout(() => r(7), 40));
  await assertRejects(() => withDeadline(slow, 10, "slow", (v) => late = v), KvrelayError);
  await slow;
  assertEquals(late, 7);
  assertEquals(await withDeadline(Promise.resolve(3), 1_000, "fast"), 3);
});

Deno.test("probeGpu() gives up on an adapter request that never answers", async () => {
  const hung = { requestAdapter: () => new Promise<GPUAdapter | null>(() => {}) };
  const t0 = performance.now();
  const p = await probeGpu(hung, 30);
  assert(performance.now() - t0 < 2_000);
  assertEquals(p.found, false);
  assertMatch(p.reason!, /did not finish within 30 ms/);
  assertEquals((await probeGpu(undefined, 30)).found, false);
  assertEquals((await probeGpu({ requestAdapter: () => Promise.resolve(null) }, 30)).found, false);
});

Deno.test("probeAdapter() describes this machine's adapter and flags a software one", async () => {
  const p = await probeAdapter();
  if (!p.found) return assert(p.reason);
  assert(p.description, "an adapter has a description");
  if (/llvmpipe|lavapipe|swiftshader/i.test(p.description)) assertEquals(p.software, true);
});

Deno.test("pickDevice() takes cpu and webgpu as asked, and auto only for a hardware adapter", async () => {
  const never = () => Promise.reject(new Error("cpu must not probe"));
  assertEquals((await pickDevice("cpu", { probe: never })).device, "cpu");
  const soft = () => Promise.resolve({ found: true, description: "llvmpipe", software: true });
  assertEquals((await pickDevice("webgpu", { probe: soft })).device, "webgpu");
  const auto = await pickDevice("auto", { probe: soft });
  assertEquals(auto.device, "cpu");
  assertMatch(auto.reason!, /software adapter \(llvmpipe\)/);
  const none = await pickDevice("auto", { probe: () => Promise.resolve({ found: false, reason: "no gpu" }) });
  assertEquals(none.device, "cpu");
  assertMatch(none.reason!, /no WebGPU adapter \(no gpu\)/);
  assertEquals((await pickDevice("auto", { probe: HARDWARE })).device, "webgpu");
});

Deno.test("createSession() on webgpu runs where the provider starts and is `unavailable` where not", async () => {
  const g = new GraphBuilder("double");
  const x = g.input("x", "float32", ["n"]);
  g.output(g.node("Add", [x, x]), "float32", ["n"], "y");
  const bytes = encodeModel(g.toModel());
  if (WEBGPU.ok) {
    const s = await createSession(bytes, { device: "webgpu", timeoutMs: 30_000 });
    const { Tensor } = await import("onnxruntime-node");
    const out = await s.run({ x: new Tensor("float32", Float32Array.of(1, 2), [2]) });
    assertEquals([...out.y.data as Float32Array], [2, 4]);
    await s.release();
  } else {
    const err = await assertRejects(
      () => createSession(bytes, { device: "webgpu", timeoutMs: 30_000 }),
      KvrelayError,
    );
    assertEquals(err.code, "unavailable");
    assertMatch(err.message, /WebGPU execution provider could not start: .+; use device cpu or auto/);
  }
});

Deno.test("Model.fromWeights() on webgpu, and auto with a hardware adapter, run on the GPU or say why not", async () => {
  const { config, weights, tokenizer } = await loadCheckpoint(STORIES260K.model, STORIES260K.tokenizer);
  const base = { tokenizer, probe: HARDWARE, sessionTimeoutMs: 30_000 };
  if (!WEBGPU.ok) {
    const err = await assertRejects(
      () => Model.fromWeights(config, weights, { ...base, device: "webgpu" }),
      KvrelayError,
    );
    assertEquals(err.code, "unavailable");
  }
  // auto: the provider is tried (the probe says hardware); where it fails, the CPU takes over.
  const errors: string[] = [];
  const log = console.error;
  console.error = (...a: unknown[]) => errors.push(a.join(" "));
  let model: Model;
  try {
    model = await Model.fromWeights(config, weights, { ...base, device: "auto" });
  } finally {
    console.error = log;
  }
  try {
    assertEquals(model.device, WEBGPU.ok ? "webgpu" : "cpu");
    assertEquals(model.keepsKv, WEBGPU.ok);
    if (WEBGPU.ok) assertEquals(model.adapter, "Test GPU");
    const out = await model.prefill([1, 300, 301]);
    assertEquals(out.logits.length, config.vocabSize);
    assert(errors.length <= 1, `said once at most: ${errors}`);
    if (!WEBGPU.ok && errors.length) assertMatch(errors[0], /device auto: .*the model runs on the CPU/);
  } finally {
    await model.close();
  }
});

/** Runs the CLI's generate on stories260K; returns ids, stderr and the exit code. */
async function generate(device: string): Promise<{ code: number; ids?: number[]; stderr: string }> {
  const root = new URL("../../", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--cached-only",
      "services/cli/main.ts",
      "generate",
      "--model",
      STORIES260K.model,
      "--tokenizer",
      STORIES260K.tokenizer,
      "--device",
      device,
      "--prompt",
      "Once upon a time",
      "--max-tokens",
      "12",
      "--json",
    ],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  return {
    code: out.code,
    ids: out.code === 0 ? JSON.parse(stdout).ids : undefined,
    stderr: new TextDecoder().decode(out.stderr),
  };
}

Deno.test("generate --device auto gives the CPU's tokens and says once why it stays on the CPU", async () => {
  const [cpu, auto, bad] = await Promise.all([generate("cpu"), generate("auto"), generate("tpu")]);
  assertEquals(cpu.code, 0, cpu.stderr);
  assertEquals(auto.code, 0, auto.stderr);
  const probe = await probeAdapter();
  const notes = auto.stderr.split("\n").filter((l) => l.includes("device auto:"));
  if (!probe.found || probe.software || !WEBGPU.ok) {
    assertEquals(auto.ids, cpu.ids);
    assertEquals(notes.length, 1, auto.stderr);
    assertMatch(notes[0], /the model runs on the CPU/);
  }
  assert(bad.code !== 0);
  assertMatch(bad.stderr, /KVRELAY_DEVICE must be one of cpu, webgpu, auto, got 'tpu'/);
});
