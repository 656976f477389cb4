/**
 * A small builder for ONNX graphs: declare inputs and outputs (symbolic dims allowed), add
 * initializers from typed arrays (stored as `raw_data`), add nodes, get a `ModelProto`.
 * Node outputs get unique generated names unless one is given.
 * @module
 */
import type {
  AttributeValue,
  Dim,
  ElemType,
  GraphProto,
  ModelProto,
  NodeProto,
  TensorProto,
  ValueInfoProto,
} from "./types.ts";

/** Attribute values as callers write them; arrays of integers become `ints`. */
export type Attr = number | string | number[] | AttributeValue;

/** Default operator set: ONNX opset 17 (ReduceMean/ReduceSum-with-input era, widely supported). */
export const DEFAULT_OPSET = 17;

/** Raw little-endian bytes of a typed array, without copying. */
function rawBytes(data: ArrayBufferView): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function toAttribute(name: string, a: Attr): AttributeValue {
  if (typeof a === "string") return { kind: "string", value: a };
  if (typeof a === "number") {
    if (!Number.isInteger(a)) throw new TypeError(`attribute ${name}: use {kind:"float"} for ${a}`);
    return { kind: "int", value: a };
  }
  if (Array.isArray(a)) return { kind: "ints", value: a };
  return a;
}

/** Builds one ONNX graph. */
export class GraphBuilder {
  readonly name: string;
  #nodes: NodeProto[] = [];
  #initializers: TensorProto[] = [];
  #inputs: ValueInfoProto[] = [];
  #outputs: ValueInfoProto[] = [];
  #names = new Set<string>();
  #domains = new Set<string>();
  #counter = 0;

  constructor(name: string) {
    this.name = name;
  }

  /** A value name with the given prefix that is not taken yet (claimed when used). */
  fresh(prefix: string): string {
    let n: string;
    do n = `${prefix}_${this.#counter++}`; while (this.#names.has(n));
    return n;
  }

  #claim(name: string): string {
    if (this.#names.has(name)) throw new RangeError(`duplicate value name ${name}`);
    this.#names.add(name);
    return name;
  }

  /** Declares a graph input and returns its name. */
  input(name: string, elemType: ElemType, shape: Dim[]): string {
    this.#inputs.push({ name: this.#claim(name), elemType, shape });
    return name;
  }

  /** Declares `value` as a graph output; with `rename`, an Identity gives it that name. */
  output(value: string, elemType: ElemType, shape: Dim[], rename?: string): string {
    let name = value;
    if (rename !== undefined && rename !== value) name = this.node("Identity", [value], {}, rename);
    this.#outputs.push({ name, elemType, shape });
    return name;
  }

  /** Adds a constant tensor (an initializer with `raw_data`) and returns its name. */
  initializer(name: string, elemType: ElemType, dims: number[], data: ArrayBufferView): string {
    const n = dims.reduce((a, b) => a * b, 1);
    const bytesPer = { float32: 4, int32: 4, int64: 8, float64: 8, float16: 2, bfloat16: 2 }[
      elemType as string
    ] ?? 1;
    if (data.byteLength !== n * bytesPer) {
      throw new RangeError(`initializer ${name}: ${data.byteLength} bytes for dims [${dims}] of ${elemType}`);
    }
    this.#initializers.push({ name: this.#claim(name), dataType: elemType, dims, rawData: rawBytes(data) });
    return name;
  }

  /** An int64 constant vector (shapes, axes, indices). */
  int64s(values: number[], name?: string): string {
    return this.initializer(
      name ?? this.fresh("i64"),
      "int64",
      [values.length],
      BigInt64Array.from(values, BigInt),
    );
  }

  /** A float32 scalar constant. */
  scalar(value: number, name?: string): string {
    return this.initializer(name ?? this.fresh("f32"), "float32", [], Float32Array.of(value));
  }

  /** Adds a node with one output and returns that output's name. */
  node(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, output?: string): string {
    return this.nodeN(opType, inputs, 1, attrs, output === undefined ? undefined : [output])[0];
  }

  /** Adds a node with `nOutputs` outputs and returns their names. */
  nodeN(
    opType: string,
    inputs: string[],
    nOutputs: number,
    attrs: Record<string, Attr> = {},
    outputs?: string[],
  ): string[] {
    const outs = outputs?.map((o) => this.#claim(o)) ??
      Array.from({ length: nOutputs }, () => this.fresh(opType.toLowerCase()));
    const attributes: Record<string, AttributeValue> = {};
    for (const [k, v] of Object.entries(attrs)) attributes[k] = toAttribute(k, v);
    this.#nodes.push({ name: this.fresh(`n_${opType}`), opType, inputs, outputs: outs, attributes });
    return outs;
  }

  /**
   * Adds a node of the operator set `domain` (e.g. onnxruntime's "com.microsoft" contrib
   * ops, imported at version 1 by `toModel`) and returns its output names. Outputs whose
   * `used` entry is false stay unnamed (""), as ONNX allows for optional outputs; default:
   * one output.
   *
   * @example
   * ```ts
   * import { GraphBuilder } from "./graph_builder.ts";
   * const g = new GraphBuilder("g");
   * const x = g.input("x", "float32", ["n"]);
   * const [y] = g.nodeIn("com.microsoft", "QuickGelu", [x], { attrs: { alpha: { kind: "float", value: 1 } } });
   * ```
   */
  nodeIn(
    domain: string,
    opType: string,
    inputs: string[],
    opts: { attrs?: Record<string, Attr>; used?: boolean[] } = {},
  ): string[] {
    const outs = (opts.used ?? [true]).map((u) => u ? this.#claim(this.fresh(opType.toLowerCase())) : "");
    const attributes: Record<string, AttributeValue> = {};
    for (const [k, v] of Object.entries(opts.attrs ?? {})) attributes[k] = toAttribute(k, v);
    this.#nodes.push({ name: this.fresh(`n_${opType}`), opType, domain, inputs, outputs: outs, attributes });
    if (domain !== "") this.#domains.add(domain);
    return outs;
  }

  /** The graph as a protobuf-ready object. */
  toGraph(): GraphProto {
    return {
      name: this.name,
      nodes: [...this.#nodes],
      initializers: [...this.#initializers],
      inputs: [...this.#inputs],
      outputs: [...this.#outputs],
    };
  }

  /** Wraps the graph in a model with the default ONNX opset (IR version 8). */
  toModel(opts: { opset?: number; producerName?: string } = {}): ModelProto {
    return {
      irVersion: 8,
      opsets: [
        { domain: "", version: opts.opset ?? DEFAULT_OPSET },
        ...[...this.#domains].map((domain) => ({ domain, version: 1 })),
      ],
      producerName: opts.producerName ?? "kvrelay",
      graph: this.toGraph(),
    };
  }
}
