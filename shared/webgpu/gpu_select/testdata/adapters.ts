/**
 * Prints, as one JSON line, which adapter each WebGPU runtime of kvrelay finds in this process:
 * Deno's own (`wgpu`, the codec's) and onnxruntime's Dawn (`ort`, the model's: "started" or its
 * error). select_test.ts runs it under different KVRELAY_GPU settings.
 */
import { encodeModel, GraphBuilder } from "../../../onnx/mod.ts";
import { createSession } from "../../../model/session.ts";

const adapter = await navigator.gpu?.requestAdapter({ powerPreference: "high-performance" });
let ort: string;
try {
  const g = new GraphBuilder("double");
  const x = g.input("x", "float32", ["n"]);
  g.output(g.node("Add", [x, x]), "float32", ["n"], "y");
  const s = await createSession(encodeModel(g.toModel()), { device: "webgpu", timeoutMs: 30_000 });
  await s.release();
  ort = "started";
} catch (err) {
  ort = (err as Error).message;
}
console.log(JSON.stringify({ wgpu: adapter ? adapter.info.description || "unnamed" : null, ort }));
