/**
 * The subset of the ONNX protobuf schema (onnx/onnx.proto) that kvrelay writes, as plain
 * TypeScript objects. Field numbers live in `encode.ts`.
 * @module
 */

/** `TensorProto.DataType` values used here. */
export const DataType = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
  bfloat16: 16,
} as const;

/** Element type names accepted by the builder. */
export type ElemType = keyof typeof DataType;

/** A dimension: a fixed size or a symbolic name such as `"seq"`. */
export type Dim = number | string;

/** `TensorProto` with its payload in `raw_data` (little-endian). */
export interface TensorProto {
  name: string;
  dataType: ElemType;
  dims: number[];
  rawData: Uint8Array;
}

/** `ValueInfoProto` for a tensor. */
export interface ValueInfoProto {
  name: string;
  elemType: ElemType;
  shape: Dim[];
}

/** An attribute value; the kind picks the `AttributeProto` field. */
export type AttributeValue =
  | { kind: "int"; value: number }
  | { kind: "float"; value: number }
  | { kind: "string"; value: string }
  | { kind: "ints"; value: number[] }
  | { kind: "floats"; value: number[] }
  | { kind: "tensor"; value: TensorProto };

/** `NodeProto`. */
export interface NodeProto {
  name: string;
  opType: string;
  domain?: string;
  inputs: string[];
  outputs: string[];
  attributes: Record<string, AttributeValue>;
}

/** `GraphProto`. */
export interface GraphProto {
  name: string;
  nodes: NodeProto[];
  initializers: TensorProto[];
  inputs: ValueInfoProto[];
  outputs: ValueInfoProto[];
}

/** `ModelProto`. */
export interface ModelProto {
  irVersion: number;
  opsets: { domain: string; version: number }[];
  producerName: string;
  graph: GraphProto;
}
