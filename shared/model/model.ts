/**
 * `Model`: a loaded checkpoint, its tokenizer and two onnxruntime sessions (prefill and
 * batched decode) built from graphs generated at load time. It knows nothing about
 * eviction or transport: prefill returns the full KV cache and the eviction metric; decode
 * takes whatever per-head cache the caller kept.
 *
 *   prefill(ids)  → logits at the last position, per-layer K (after RoPE) / V, metric
 *   decode(batch) → logits per sequence and the new token's K / V per layer
 *   decodeKeep(batch | kept) → the same, and the batch's KV kept by the runtime for the
 *                   next step (device memory on WebGPU; see `kept_kv.ts`)
 *
 * Device: `cpu`, `webgpu` or `auto` (see `device.ts`); `model.device` says where it runs.
 * On WebGPU the weights are graph initializers, so they are uploaded once with the session.
 * @module
 */
import { type CoefficientSet, loadCoefficientsBeside } from "../codec/predict/coefficients.ts";
import * as ort from "onnxruntime-node";
import { KvrelayError } from "../errors.ts";
import { encodeModel } from "../onnx/mod.ts";
import type { DeviceChoice } from "../config/mod.ts";

import type { Tokenizer } from "../tokenizer/mod.ts";
import type { ModelConfig } from "./config.ts";
import {
  buildDecodeGraph,
  buildPrefillGraph,
  HIDDEN_OUT,
  type LayerGroup,
  MASKED,
  PACKED,
  unpackPrefillGroup,
} from "./llama_graph.ts";
import { loadCheckpoint } from "./load.ts";
import { createSession } from "./session.ts";
import { type AdapterProbe, announceCpuFallback, type ModelDevice, pickDevice } from "./device.ts";
import {
  attentionBias,
  decodeOutputLocations,
  decodeOutputOf,
  disposeAll,
  KeptKv,
  presentOf,
} from "./kept_kv.ts";
import type { LlamaWeights } from "./weights.ts";
import type { DecodeBatch, DecodeOutput, LayerKv, PrefillOutput } from "./steps.ts";

/** One decode step that continues from a kept cache (same sequences, same order). */
export interface KeptStep {
  tokens: number[]; // (B) new tokens
  positions: number[]; // (B) true positions (RoPE) of those tokens
  kept: KeptKv; // consumed by the step
}

/** Result of `Model.decodeKeep`. */
export interface KeptDecodeOutput extends DecodeOutput {
  kept: KeptKv; // the past with this step's tokens appended, for the next step
}

/** Options of `Model.load`. */
export interface ModelLoadOptions {
  /** A llama2.c `.bin` checkpoint, or a Hugging Face folder (config.json + safetensors). */
  modelPath: string;
  /** llama2.c `tokenizer.bin`; default `tokenizer.bin` beside a `.bin` checkpoint. */
  tokenizerPath?: string;
  /** onnxruntime intra-op threads (default 1). */
  threads?: number;
  /** Deadline for building each onnxruntime session (default 60 s). */
  sessionTimeoutMs?: number;
  /** `cpu` (default), `webgpu` (fails with `unavailable` when it cannot start) or `auto`. */
  device?: DeviceChoice;
  /**
   * Build the decode session for `decodeKeep` (present KV outputs, IO binding); default
   * true on WebGPU, false on the CPU, whose `decode` stays the plain graph.
   */
  keepKv?: boolean;
  /**
   * Build the decode graph with the attention metric output (`DecodeOutput.attention`), what
   * decode-time eviction ranks by; default true.
   */
  attention?: boolean;
  /**
   * Build both graphs with onnxruntime contrib ops and fewer kernels (`fused` in
   * `llama_graph.ts`); default true on WebGPU, where each kernel launch costs a fixed time,
   * false on the CPU, whose results stay those of the standard-op graphs bit for bit.
   */
  fused?: boolean;
  /**
   * Run prefill as this many consecutive graphs of layers (default 1, one graph): `prefill`'s
   * `onLayers` then hears of each group's KV as soon as it is computed, so the hand-off can
   * start on it while the later groups compute. At most the layer count. `auto`: a group a
   * layer on the CPU, where a run costs next to nothing more; one graph on WebGPU, where each
   * group would download its results and upload the residual stream again.
   */
  prefillGroups?: number | "auto";
}

/** Options of `Model.prefill`. */
export interface PrefillOptions {
  /** Last prompt queries behind the eviction metric (default `DEFAULT_OBSERVATION_WINDOW`). */
  observationWindow?: number;
  /**
   * Called when layers [0, upTo) of the result are computed: their `layers` entries and their
   * rows of `metric` are final (`layers` and `metric` are the arrays prefill resolves with).
   */
  onLayers?: (upTo: number, partial: { layers: LayerKv[]; metric: Float32Array }) => void;
  /** Stops between layer groups once aborted (the request failed elsewhere), with `unavailable`. */
  signal?: AbortSignal;
}

/** `n` consecutive groups of `nLayers` layers, as even as they divide. */
export function layerGroups(nLayers: number, n: number): LayerGroup[] {
  const k = Math.max(1, Math.min(nLayers, Math.floor(n)));
  return Array.from({ length: k }, (_, i) => ({
    from: Math.round((i * nLayers) / k),
    to: Math.round(((i + 1) * nLayers) / k),
  }));
}

/** Options of `Model.fromWeights`. */
export interface FromWeightsOptions extends Omit<ModelLoadOptions, "modelPath" | "tokenizerPath"> {
  tokenizer: Tokenizer;
  /** Adapter probe for `auto`/`webgpu` (default: `navigator.gpu`, once per process). */
  probe?: () => Promise<AdapterProbe>;
}

/** Default number of last prompt queries behind the eviction metric. */
export const DEFAULT_OBSERVATION_WINDOW = 32;

function i64(values: ArrayLike<number>): BigInt64Array {
  const out = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = BigInt(values[i]);
  return out;
}

/** A loaded model, ready for prefill and decode. */
export class Model {
  readonly config: ModelConfig;
  readonly tokenizer: Tokenizer;
  /** Where the sessions run. */
  readonly device: ModelDevice;
  /** The WebGPU adapter's description, when one was asked for. */
  readonly adapter?: string;
  /** `decodeKeep` is available (the decode graph also returns the present KV). */
  readonly keepsKv: boolean;
  /**
   * The codec's cross-channel KV predictor for this model (`kv_predictor.bin` beside a model
   * folder's weights), registered for decoding when the model loads; undefined without one.
   */
  kvPredictor?: CoefficientSet;
  /** Decode steps return the attention metric (`DecodeOutput.attention`). */
  readonly attention: boolean;
  /** One session per layer group, in layer order (one for the whole model by default). */
  #prefill: { group: LayerGroup; session: ort.InferenceSession }[];
  #decode: ort.InferenceSession;
  #kept = new Set<KeptKv>(); // kept caches not yet consumed or disposed
  #closed = false;

  private constructor(
    config: ModelConfig,
    tokenizer: Tokenizer,
    sessions: {
      prefill: { group: LayerGroup; session: ort.InferenceSession }[];
      decode: ort.InferenceSession;
    },
    on: { device: ModelDevice; adapter?: string; keepsKv: boolean; attention: boolean },
  ) {
    this.config = config;
    this.tokenizer = tokenizer;
    this.#prefill = sessions.prefill;
    this.#decode = sessions.decode;
    this.device = on.device;
    this.adapter = on.adapter;
    this.keepsKv = on.keepsKv;
    this.attention = on.attention;
  }

  /**
   * Loads a checkpoint and tokenizer and builds the sessions.
   *
   * @example
   * ```ts
   * import { Model } from "./mod.ts";
   * const model = await Model.load({ modelPath: "stories260K.bin", tokenizerPath: "tok512.bin" });
   * const out = await model.prefill(model.tokenizer.encode("Once upon"));
   * await model.close();
   * ```
   */
  static async load(opts: ModelLoadOptions): Promise<Model> {
    const { config, weights, tokenizer } = await loadCheckpoint(opts.modelPath, opts.tokenizerPath);
    const kvPredictor = await loadCoefficientsBeside(opts.modelPath);
    const model = await Model.fromWeights(config, weights, { ...opts, tokenizer });
    model.kvPredictor = kvPredictor;
    return model;
  }

  /**
   * Builds a model from weights already in the runtime layout (see `weights.ts`) on the
   * device `opts.device` names. Under `auto` a WebGPU provider that fails to start or
   * times out leaves the model on the CPU, said once on stderr.
   */
  static async fromWeights(
    config: ModelConfig,
    weights: LlamaWeights,
    opts: FromWeightsOptions,
  ): Promise<Model> {
    const choice = opts.device ?? "cpu";
    const pick = await pickDevice(choice, { probe: opts.probe });
    const adapter = pick.adapter?.description;
    if (pick.device === "webgpu") {
      try {
        return await Model.#build(config, weights, opts, { device: "webgpu", adapter });
      } catch (err) {
        const startFailed = err instanceof KvrelayError &&
          (err.code === "unavailable" || err.code === "timeout");
        if (choice !== "auto" || !startFailed) throw err;
        announceCpuFallback(err.message);
      }
    } else if (pick.reason) {
      announceCpuFallback(pick.reason);
    }
    return await Model.#build(config, weights, opts, { device: "cpu" });
  }

  static async #build(
    config: ModelConfig,
    weights: LlamaWeights,
    opts: FromWeightsOptions,
    on: { device: ModelDevice; adapter?: string },
  ): Promise<Model> {
    const keepsKv = opts.keepKv ?? on.device === "webgpu";
    const fused = opts.fused ?? on.device === "webgpu";
    const sopts = { threads: opts.threads, timeoutMs: opts.sessionTimeoutMs, device: on.device };
    const prefill: { group: LayerGroup; session: ort.InferenceSession }[] = [];
    try {
      const asked = opts.prefillGroups ?? 1;
      if (asked !== "auto" && !(Number.isInteger(asked) && asked >= 1 && asked <= config.nLayers)) {
        throw new RangeError(`prefillGroups must be auto or 1..${config.nLayers} (the layers), got ${asked}`);
      }
      const groups = asked === "auto" ? (on.device === "cpu" ? config.nLayers : 1) : asked;
      for (const group of layerGroups(config.nLayers, groups)) {
        const layers = group.from === 0 && group.to === config.nLayers ? undefined : group;
        const graph = buildPrefillGraph(config, weights, { fused, layers });
        prefill.push({ group, session: await createSession(encodeModel(graph.toModel()), sopts) });
      }
      const attention = opts.attention ?? true;
      const graph = buildDecodeGraph(config, weights, { present: keepsKv, fused, attention });
      const decode = await createSession(encodeModel(graph.toModel()), {
        ...sopts,
        outputLocations: keepsKv ? decodeOutputLocations(config, on.device) : undefined,
      });
      return new Model(config, opts.tokenizer, { prefill, decode }, { ...on, keepsKv, attention });
    } catch (err) {
      for (const p of prefill) await p.session.release();
      throw err;
    }
  }

  #open(): void {
    if (this.#closed) throw new KvrelayError("unavailable", "model is closed");
  }

  #checkIds(ids: number[], field: string): void {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.config.vocabSize) {
        throw new KvrelayError("bad_request", `token id ${id} outside [0, ${this.config.vocabSize})`, {
          param: field,
        });
      }
    }
  }

  /** How many consecutive graphs prefill runs (`prefillGroups`). */
  get prefillGroups(): number {
    return this.#prefill.length;
  }

  /**
   * Runs the prompt; returns last-position logits, the KV cache and the eviction metric. With
   * layer groups, `onLayers` hears of each group's layers as soon as they are computed.
   */
  async prefill(ids: number[], opts: PrefillOptions = {}): Promise<PrefillOutput> {
    this.#open();
    const c = this.config;
    const T = ids.length;
    if (T === 0) throw new KvrelayError("bad_request", "prompt is empty", { param: "prompt" });
    if (T > c.maxSeqLen) {
      throw new KvrelayError("bad_request", `prompt has ${T} tokens, model context is ${c.maxSeqLen}`, {
        param: "prompt",
      });
    }
    this.#checkIds(ids, "prompt");
    const window = opts.observationWindow ?? DEFAULT_OBSERVATION_WINDOW;
    if (!Number.isInteger(window) || window < 1) {
      throw new RangeError(`observationWindow ${window} must be >= 1`);
    }
    const w = Math.min(window, T);
    const bias = new Float32Array(T * T);
    for (let i = 0; i < T; i++) bias.fill(MASKED, i * T + i + 1, (i + 1) * T);
    const shared = {
      positions: new ort.Tensor("int64", i64(ids.map((_, i) => i)), [T]),
      attn_bias: new ort.Tensor("float32", bias, [T, T]),
      metric_start: new ort.Tensor("int64", BigInt64Array.of(BigInt(T - w)), [1]),
    };
    const perLayer = c.nKvHeads * T;
    const single = this.#prefill.length === 1;
    let metric: Float32Array = new Float32Array(0);
    const layers: LayerKv[] = new Array(c.nLayers);
    let hidden: Float32Array | undefined;
    let logits: Float32Array | undefined;
    for (const { group, session } of this.#prefill) {
      if (opts.signal?.aborted) throw new KvrelayError("unavailable", "prefill stopped: its request failed");
      const feeds: Record<string, ort.Tensor> = { ...shared };
      if (hidden) feeds.hidden = new ort.Tensor("float32", hidden, [T, c.dim]);
      else feeds.input_ids = new ort.Tensor("int64", i64(ids), [T]);
      const out = await session.run(feeds);
      // One download per group: its results are views of the packed output.
      const r = unpackPrefillGroup(out[PACKED].data as Float32Array, c, T, group);
      if (single) metric = r.metric; // the whole metric already: no copy
      else {
        if (!metric.length) metric = new Float32Array(c.nLayers * perLayer);
        metric.set(r.metric, group.from * perLayer);
      }
      r.keys.forEach((keys, i) => layers[group.from + i] = { keys, values: r.values[i] });
      hidden = r.logits ? undefined : out[HIDDEN_OUT].data as Float32Array;
      logits = r.logits ?? logits;
      opts.onLayers?.(group.to, { layers, metric });
    }
    return { logits: logits!, layers, nPos: T, metric };
  }

  /** One token for each of B sequences; each KV head attends to its valid past prefix and the new token. */
  async decode(batch: DecodeBatch): Promise<DecodeOutput> {
    this.#open();
    const c = this.config;
    const { nKvHeads, headDim: hd, nLayers } = c;
    const B = batch.tokens.length;
    if (B === 0) throw new TypeError("decode batch is empty");
    if (batch.positions.length !== B) {
      throw new TypeError(`${batch.positions.length} positions for ${B} tokens`);
    }
    if (batch.past.length !== nLayers || batch.pastLengths.length !== nLayers) {
      throw new TypeError(`past/pastLengths need ${nLayers} layers`);
    }
    this.#checkIds(batch.tokens, "tokens");
    for (const p of batch.positions) {
      if (!Number.isInteger(p) || p < 0 || p >= c.maxSeqLen) {
        throw new RangeError(`position ${p} outside [0, ${c.maxSeqLen})`);
      }
    }
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor("int64", i64(batch.tokens), [B]),
      positions: new ort.Tensor("int64", i64(batch.positions), [B]),
    };
    for (let l = 0; l < nLayers; l++) {
      const { keys, values } = batch.past[l];
      const P = keys.length / (B * nKvHeads * hd);
      if (!Number.isInteger(P) || values.length !== keys.length) {
        throw new TypeError(`layer ${l}: past keys/values of ${keys.length}/${values.length} values`);
      }
      const lengths = batch.pastLengths[l];
      if (lengths.length !== B * nKvHeads) {
        throw new TypeError(`layer ${l}: pastLengths needs ${B * nKvHeads}`);
      }
      const bias = new Float32Array(B * nKvHeads * (P + 1));
      for (let bh = 0; bh < B * nKvHeads; bh++) {
        const n = lengths[bh];
        if (!(n >= 0 && n <= P)) {
          throw new RangeError(`layer ${l}: pastLengths[${bh}] = ${n} outside [0, ${P}]`);
        }
        bias.fill(MASKED, bh * (P + 1) + n, bh * (P + 1) + P);
      }
      const shape = [B, nKvHeads, P, hd];
      feeds[`past_key_${l}`] = new ort.Tensor("float32", keys, shape);
      feeds[`past_value_${l}`] = new ort.Tensor("float32", values, shape);
      feeds[`attn_bias_${l}`] = new ort.Tensor("float32", bias, [B, nKvHeads, 1, P + 1]);
    }
    const out = await this.#decode.run(feeds);
    if (this.keepsKv) disposeAll(presentOf(out, nLayers));
    const past = batch.past.map((p) => p.keys.length / (B * nKvHeads * hd));
    return decodeOutputOf(
      out,
      c,
      B,
      this.attention ? { lengths: batch.pastLengths, gathered: past, steps: 0, past } : undefined,
    );
  }

  /**
   * `decode`, keeping the batch's KV in the runtime: the result's `kept` feeds the next
   * step of the same sequences in the same order (`{ tokens, positions, kept }`), which then
   * uploads no past KV. A `kept` handed in is consumed, whether the step succeeds or not;
   * dispose the last one when the batch changes or ends. Needs `keepsKv`.
   */
  async decodeKeep(batch: DecodeBatch | KeptStep): Promise<KeptDecodeOutput> {
    this.#open();
    if (!this.keepsKv) throw new TypeError("decodeKeep needs a model loaded with keepKv");
    const c = this.config;
    const { nKvHeads, headDim: hd, nLayers } = c;
    const B = batch.tokens.length;
    const keptIn = "kept" in batch ? batch.kept : undefined;
    const past = keptIn?.take();
    try {
      if (B === 0) throw new TypeError("decode batch is empty");
      if (batch.positions.length !== B) {
        throw new TypeError(`${batch.positions.length} positions for ${B} tokens`);
      }
      if (keptIn && keptIn.batch !== B) {
        throw new TypeError(`${B} tokens for a kept batch of ${keptIn.batch}`);
      }
      this.#checkIds(batch.tokens, "tokens");
      for (const p of batch.positions) {
        if (!Number.isInteger(p) || p < 0 || p >= c.maxSeqLen) {
          throw new RangeError(`position ${p} outside [0, ${c.maxSeqLen})`);
        }
      }
      const fresh = keptIn ? undefined : batch as DecodeBatch;
      if (fresh && (fresh.past.length !== nLayers || fresh.pastLengths.length !== nLayers)) {
        throw new TypeError(`past/pastLengths need ${nLayers} layers`);
      }
      const layout = keptIn
        ? { lengths: keptIn.lengths, gathered: keptIn.gathered, steps: keptIn.steps }
        : { lengths: fresh!.pastLengths, gathered: [] as number[], steps: 0 };
      const feeds: Record<string, ort.Tensor> = {
        input_ids: new ort.Tensor("int64", i64(batch.tokens), [B]),
        positions: new ort.Tensor("int64", i64(batch.positions), [B]),
      };
      for (let l = 0; l < nLayers; l++) {
        let P: number;
        if (keptIn && past) {
          P = keptIn.length(l);
          feeds[`past_key_${l}`] = past[l].keys;
          feeds[`past_value_${l}`] = past[l].values;
        } else {
          const { keys, values } = fresh!.past[l];
          P = keys.length / (B * nKvHeads * hd);
          if (!Number.isInteger(P) || values.length !== keys.length) {
            throw new TypeError(`layer ${l}: past keys/values of ${keys.length}/${values.length} values`);
          }
          if (layout.lengths[l].length !== B * nKvHeads) {
            throw new TypeError(`layer ${l}: pastLengths needs ${B * nKvHeads}`);
          }
          layout.gathered.push(P);
          feeds[`past_key_${l}`] = new ort.Tensor("float32", keys, [B, nKvHeads, P, hd]);
          feeds[`past_value_${l}`] = new ort.Tensor("float32", values, [B, nKvHeads, P, hd]);
        }
        feeds[`attn_bias_${l}`] = new ort.Tensor(
          "float32",
          attentionBias(layout.lengths[l], layout.gathered[l], P),
          [B, nKvHeads, 1, P + 1],
        );
      }
      const out = await this.#decode.run(feeds);
      const attention = this.attention
        ? { ...layout, past: layout.gathered.map((g) => g + layout.steps) }
        : undefined;
      const kept = new KeptKv(
        B,
        { ...layout, steps: layout.steps + 1 },
        presentOf(out, nLayers),
        (k) => this.#kept.delete(k),
      );
      this.#kept.add(kept);
      return { ...decodeOutputOf(out, c, B, attention), kept };
    } finally {
      if (past) disposeAll(past);
    }
  }

  /** Disposes kept caches, releases both sessions; later calls fail with `unavailable`. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const k of [...this.#kept]) k.dispose();
    for (const p of this.#prefill) await p.session.release();
    await this.#decode.release();
  }
}
