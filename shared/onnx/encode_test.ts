import { assertEquals } from "@std/assert";
import * as ort from "onnxruntime-node";
import { encodeModel, GraphBuilder } from "./mod.ts";

Deno.test("encodeModel() output loads in onnxruntime and computes MatMul + Add + attributes", async () => {
  const g = new GraphBuilder("tiny");
  const x = g.input("x", "float32", ["batch", 2]);
  const w = g.initializer("w", "float32", [2, 3], Float32Array.of(1, 2, 3, 4, 5, 6));
  const b = g.initializer("b", "float32", [3], Float32Array.of(0.5, 0, -1));
  const y = g.node("Add", [g.node("MatMul", [x, w]), b]);
  const s = g.node("ReduceSum", [y, g.int64s([1])], { keepdims: 0 });
  const t = g.node("Transpose", [y], { perm: [1, 0] });
  g.output(y, "float32", ["batch", 3], "y");
  g.output(s, "float32", ["batch"], "s");
  g.output(t, "float32", [3, "batch"], "t");
  const session = await ort.InferenceSession.create(encodeModel(g.toModel()));
  try {
    const out = await session.run({ x: new ort.Tensor("float32", Float32Array.of(1, 1, 2, 0), [2, 2]) });
    assertEquals([...(out.y.data as Float32Array)], [5.5, 7, 8, 2.5, 4, 5]);
    assertEquals([...(out.s.data as Float32Array)], [20.5, 11.5]);
    assertEquals(out.t.dims, [3, 2]);
  } finally {
    await session.release();
  }
});
