/**
 * For tests and benchmarks: does onnxruntime's WebGPU execution provider start on this
 * machine? Asked once per process with a one-op graph, under a deadline.
 * @module
 */
import { KvrelayError } from "../errors.ts";
import { encodeModel, GraphBuilder } from "../onnx/mod.ts";
import { createSession } from "./session.ts";

let started: Promise<{ ok: boolean; error?: KvrelayError }> | undefined;

/** `{ ok: true }` when a WebGPU session can be built, else the `KvrelayError` that says why. */
export function webgpuStarts(timeoutMs = 30_000): Promise<{ ok: boolean; error?: KvrelayError }> {
  started ??= (async () => {
    const g = new GraphBuilder("probe");
    const x = g.input("x", "float32", ["n"]);
    g.output(g.node("Add", [x, x]), "float32", ["n"], "y");
    try {
      const s = await createSession(encodeModel(g.toModel()), { device: "webgpu", timeoutMs });
      await s.release();
      return { ok: true };
    } catch (err) {
      if (err instanceof KvrelayError) return { ok: false, error: err };
      throw err;
    }
  })();
  return started;
}
