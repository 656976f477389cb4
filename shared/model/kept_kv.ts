/**
 * `KeptKv`: the past keys and values of one decode batch, kept where the model runs (GPU
 * buffers on WebGPU) between steps, so that a step uploads only the new tokens and the
 * attention bias and downloads only logits and the new token's K/V.
 *
 * Layout per layer l: (B, nKv, P_l, hd) with P_l = gathered_l + steps. The first gathered_l
 * positions are the caller's past as first handed in, each head's valid prefix followed by
 * zero padding; the last `steps` positions are the tokens decoded since, valid for every
 * head. So head bh of layer l attends to [0, lengths[bh]) and [gathered_l, P_l): the bias
 * masks [lengths[bh], gathered_l) only. The caller's block store stays the source of truth:
 * a kept cache is a copy that is dropped whenever the batch changes.
 * @module
 */
import type * as ort from "onnxruntime-node";
import { KvrelayError } from "../errors.ts";
import type { ModelConfig } from "./config.ts";
import { MASKED, PACKED, unpackDecode } from "./llama_graph.ts";
import type { AttentionLayout, DecodeOutput } from "./steps.ts";
import type { ModelDevice } from "./device.ts";
import type { OutputLocations } from "./session.ts";

/** Additive attention bias (B * nKv, 1, P + 1): masks [length, gathered) of each head. */
export function attentionBias(lengths: Int32Array, gathered: number, P: number): Float32Array {
  const heads = lengths.length;
  const bias = new Float32Array(heads * (P + 1));
  for (let bh = 0; bh < heads; bh++) {
    const n = lengths[bh];
    if (!(n >= 0 && n <= gathered)) {
      throw new RangeError(`pastLengths[${bh}] = ${n} outside [0, ${gathered}]`);
    }
    bias.fill(MASKED, bh * (P + 1) + n, bh * (P + 1) + gathered);
  }
  return bias;
}

/** A batch's KV kept by the runtime between decode steps; see the module doc. */
export class KeptKv {
  /** Sequences in the batch (B). */
  readonly batch: number;
  /** Per layer (B * nKv): valid prefix of each head within the gathered past. */
  readonly lengths: Int32Array[];
  /** Per layer: padded past length when the batch was handed in. */
  readonly gathered: number[];
  /** Tokens decoded since (each appended to every head). */
  readonly steps: number;
  #tensors: { keys: ort.Tensor; values: ort.Tensor }[] | undefined;
  #onGone?: (kept: KeptKv) => void;

  /** `onGone` runs once, when the tensors are taken or disposed. */
  constructor(
    batch: number,
    layout: { lengths: Int32Array[]; gathered: number[]; steps: number },
    tensors: { keys: ort.Tensor; values: ort.Tensor }[],
    onGone?: (kept: KeptKv) => void,
  ) {
    this.batch = batch;
    this.lengths = layout.lengths;
    this.gathered = layout.gathered;
    this.steps = layout.steps;
    this.#tensors = tensors;
    this.#onGone = onGone;
  }

  /** Past length of layer l (P_l). */
  length(layer: number): number {
    return this.gathered[layer] + this.steps;
  }

  /** Where the tensors live: "gpu-buffer" on WebGPU, "cpu" otherwise. */
  get location(): string {
    return this.#tensors?.[0]?.keys.location ?? "disposed";
  }

  /** Hands the tensors to a step, once; the step disposes them when it is done. */
  take(): { keys: ort.Tensor; values: ort.Tensor }[] {
    const t = this.#tensors;
    if (!t) throw new KvrelayError("internal", "kept KV was already used or disposed");
    this.#gone();
    return t;
  }

  /** Frees the tensors (device memory on WebGPU); idempotent. */
  dispose(): void {
    const t = this.#tensors;
    this.#gone();
    if (t) disposeAll(t);
  }

  #gone(): void {
    this.#tensors = undefined;
    const f = this.#onGone;
    this.#onGone = undefined;
    f?.(this);
  }
}

/** Disposes kept tensors (a GPU buffer is released; a CPU tensor drops its data). */
export function disposeAll(tensors: { keys: ort.Tensor; values: ort.Tensor }[]): void {
  for (const { keys, values } of tensors) {
    keys.dispose();
    values.dispose();
  }
}

/**
 * Output locations of the kept decode graph: present KV stays on the device, the packed
 * logits and new K/V come back (one download). Every output is named, in graph order.
 */
export function decodeOutputLocations(c: ModelConfig, device: ModelDevice): OutputLocations {
  const loc: OutputLocations = { [PACKED]: "cpu" };
  for (let l = 0; l < c.nLayers; l++) {
    loc[`present_key_${l}`] = device === "webgpu" ? "gpu-buffer" : "cpu";
    loc[`present_value_${l}`] = device === "webgpu" ? "gpu-buffer" : "cpu";
  }
  return loc;
}

/** The present KV tensors of a kept decode run, per layer. */
export function presentOf(
  out: ort.InferenceSession.ReturnType,
  nLayers: number,
): { keys: ort.Tensor; values: ort.Tensor }[] {
  return Array.from({ length: nLayers }, (_, l) => ({
    keys: out[`present_key_${l}`] as ort.Tensor,
    values: out[`present_value_${l}`] as ort.Tensor,
  }));
}

/**
 * Logits and the new token's K/V of a decode run of B sequences: views of its packed output;
 * with `attention` (the graph's attention metric, see `DecodeOutput.attention`) also that.
 */
export function decodeOutputOf(
  out: ort.InferenceSession.ReturnType,
  c: ModelConfig,
  B: number,
  attention?: AttentionLayout & { past: number[] },
): DecodeOutput {
  const r = unpackDecode(out[PACKED].data as Float32Array, c, B, attention?.past);
  const o: DecodeOutput = { logits: r.logits, newKeys: r.keys, newValues: r.values };
  if (attention && r.attention) {
    const { lengths, gathered, steps } = attention;
    o.attention = r.attention;
    o.attentionLayout = { lengths, gathered, steps };
  }
  return o;
}
