/**
 * Hand-written ONNX protobuf encoding and a graph builder, with no dependency on the onnx
 * package. `GraphBuilder` makes graphs; `encodeModel` turns them into bytes for
 * `InferenceSession.create`.
 *
 * @example
 * ```ts
 * import { encodeModel, GraphBuilder } from "./mod.ts";
 * const g = new GraphBuilder("double");
 * const x = g.input("x", "float32", ["n"]);
 * g.output(g.node("Add", [x, x]), "float32", ["n"], "y");
 * const bytes: Uint8Array = encodeModel(g.toModel());
 * ```
 * @module
 */
export { ProtoWriter } from "./wire.ts";
export { encodeModel } from "./encode.ts";
export { type Attr, DEFAULT_OPSET, GraphBuilder } from "./graph_builder.ts";
export * from "./types.ts";
