/**
 * Encodes the ONNX objects of `types.ts` into protobuf bytes that onnxruntime loads.
 * Field numbers follow onnx/onnx.proto (proto2; repeated scalars written unpacked).
 * @module
 */
import { ProtoWriter } from "./wire.ts";
import {
  type AttributeValue,
  DataType,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from "./types.ts";

// AttributeProto.AttributeType
const ATTR_TYPE = { float: 1, int: 2, string: 3, tensor: 4, floats: 6, ints: 7 } as const;

function tensorWriter(t: TensorProto): ProtoWriter {
  const w = new ProtoWriter();
  for (const d of t.dims) w.varint(1, d); // dims
  w.varint(2, DataType[t.dataType]); // data_type
  w.string(8, t.name); // name
  w.bytes(9, t.rawData); // raw_data
  return w;
}

function attributeWriter(name: string, a: AttributeValue): ProtoWriter {
  const w = new ProtoWriter();
  w.string(1, name);
  switch (a.kind) {
    case "float":
      w.float32(2, a.value);
      break;
    case "int":
      w.varint(3, a.value);
      break;
    case "string":
      w.string(4, a.value);
      break;
    case "tensor":
      w.message(5, tensorWriter(a.value));
      break;
    case "floats":
      for (const v of a.value) w.float32(7, v);
      break;
    case "ints":
      for (const v of a.value) w.varint(8, v);
      break;
  }
  w.varint(20, ATTR_TYPE[a.kind]);
  return w;
}

function nodeWriter(n: NodeProto): ProtoWriter {
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.name);
  w.string(4, n.opType);
  for (const [k, v] of Object.entries(n.attributes)) w.message(5, attributeWriter(k, v));
  if (n.domain) w.string(7, n.domain);
  return w;
}

function valueInfoWriter(v: ValueInfoProto): ProtoWriter {
  const shape = new ProtoWriter();
  for (const d of v.shape) {
    const dim = new ProtoWriter();
    if (typeof d === "number") dim.varint(1, d); // dim_value
    else dim.string(2, d); // dim_param
    shape.message(1, dim);
  }
  const tensorType = new ProtoWriter().varint(1, DataType[v.elemType]).message(2, shape);
  const type = new ProtoWriter().message(1, tensorType); // TypeProto.tensor_type
  return new ProtoWriter().string(1, v.name).message(2, type);
}

function graphWriter(g: GraphProto): ProtoWriter {
  const w = new ProtoWriter();
  for (const n of g.nodes) w.message(1, nodeWriter(n));
  w.string(2, g.name);
  for (const t of g.initializers) w.message(5, tensorWriter(t));
  for (const i of g.inputs) w.message(11, valueInfoWriter(i));
  for (const o of g.outputs) w.message(12, valueInfoWriter(o));
  return w;
}

/**
 * Serializes a model to ONNX protobuf bytes.
 *
 * @example
 * ```ts
 * import { encodeModel, GraphBuilder } from "./mod.ts";
 * const g = new GraphBuilder("add");
 * const x = g.input("x", "float32", ["n"]);
 * g.output(g.node("Add", [x, x]), "float32", ["n"], "y");
 * const bytes = encodeModel(g.toModel());
 * ```
 */
export function encodeModel(m: ModelProto): Uint8Array {
  const w = new ProtoWriter();
  w.varint(1, m.irVersion);
  w.string(2, m.producerName);
  w.message(7, graphWriter(m.graph));
  for (const op of m.opsets) {
    w.message(8, new ProtoWriter().string(1, op.domain).varint(2, op.version));
  }
  return w.finish();
}
