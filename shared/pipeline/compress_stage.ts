/**
 * Compression side of the hand-off, in the process that made the KV: takes one request's
 * prefill output as it is in memory (raw KV never crosses the network), evicts (all layers and
 * heads compete, so the rate varies per head), then encodes the survivors of each (layer, KV
 * head) as K and V frames and hands each layer's bundle on as soon as it is made, so sending
 * and decoding overlap the encoding of the next layer. One path for every codec and backend:
 * the frame encoder decides whether frames are encoded here (the CPU codec) or on a GPU.
 * Knows nothing about NATS.
 * @module
 */
import { setImmediate } from "node:timers";
import { KvrelayError } from "../errors.ts";
import { allPositions, type EncodedHead, writeEncodedLayer } from "../kvwire/mod.ts";
import { CODEC_TRAITS, encode as encodeFrame, type EncodeOptions, type Tensor } from "../codec/mod.ts";
import type { CoefficientSet } from "../codec/predict/coefficients.ts";
import {
  capPlan,
  type EvictionPlan,
  gatherRows,
  maxPool1d,
  planKvCompress,
  planRecency,
  planUniform,
} from "../eviction/mod.ts";
import type { KvSettings } from "../handoff/contract.ts";
import { acquireArena, type GatherArena, releaseArena } from "./gather_arena.ts";

/** The prefill output compression works on (the layout `Model.prefill` returns). */
export interface PrefillKv {
  nLayers: number;
  nKvHeads: number;
  nPos: number;
  headDim: number;
  /** Per layer: K after RoPE and V, fp32 `[nKvHeads, nPos, headDim]`. */
  layers: { keys: Float32Array; values: Float32Array }[];
  /** The eviction metric, `[nLayers, nKvHeads, nPos]`. */
  metric: Float32Array;
  /** The model's cross-channel KV predictor, for kvsort/sz per-head frames (optional). */
  coefficients?: CoefficientSet;
  /**
   * While prefill still runs (in layer groups): resolves once layer `layer`'s K, V and metric
   * rows are final, rejects if prefill fails. Absent: every layer is there.
   */
  ready?: (layer: number) => Promise<void>;
}

export interface CompressionStats {
  evictMs: number;
  encodeMs: number;
  /** fp16 bytes of the prompt's K and V (all layers): what sending the cache as it is moves. */
  rawBytes: number;
  wireBytes: number;
  keptFraction: number;
  keptFractionPerLayer: number[];
}

export interface CompressionOutput {
  /** encoded[l] is layer l's encoded bundle. */
  encoded: Uint8Array[];
  stats: CompressionStats;
}

/** One layer's encoding, as it is handed on. */
export interface LayerEncoding {
  layer: number;
  /** The encoded layer bundle sent to decode. */
  bundle: Uint8Array;
  /** fp16 bytes of the layer's K and V before eviction. */
  rawBytes: number;
  /** Kept KVs / prompt KVs of this layer. */
  keptFraction: number;
  /** The layer's encoded K and V frames (for `inspect`: error bound, index share). */
  frames: Uint8Array[];
  /** Milliseconds spent encoding this layer's frames. */
  encodeMs: number;
}

/** One K or V frame about to be encoded. */
export interface FrameInput {
  layer: number;
  /** KV head, or -1 for a layer-wide frame. */
  head: number;
  role: "key" | "value";
  /** Row-major `[rows, cols]` fp32 values. */
  data: Float32Array;
  rows: number;
  cols: number;
}

/**
 * Encodes frames: `out[i]` is what the CPU codec gives `frames[i]` with `opts[i]` (a GPU
 * backend must give the same bytes). `layersPerCall` is how many layers it takes at once:
 * 1 for the CPU codec (so layers stream out one by one), more where one call per batch pays.
 */
export interface FrameEncoder {
  readonly device: string;
  readonly layersPerCall: number;
  encodeFrames(frames: FrameInput[], opts: EncodeOptions[]): Promise<Uint8Array[]> | Uint8Array[];
}

/** The CPU codec as a {@linkcode FrameEncoder}. */
export const cpuFrameEncoder: FrameEncoder = {
  device: "cpu",
  layersPerCall: 1,
  encodeFrames: (frames, opts) => frames.map((f, i) => encodeFrame(frameTensor(f), opts[i])),
};

/** A frame as the codec's tensor. */
export function frameTensor(f: FrameInput): Tensor {
  return { dtype: "f32", shape: [f.rows, f.cols], data: f.data };
}

/** Observers of the stages (tracing, metrics); each wrapper must call `run` once. */
export interface CompressionHooks {
  evict?: <T>(run: () => T) => T;
  /** Called with each layer once it is encoded, before it is handed on. */
  layerEncoded?: (layer: LayerEncoding, frames: FrameInput[]) => void;
}

/** One head's (or the layer-wide) K and V frames before encoding. */
interface HeadFrames {
  positions: Int32Array;
  keys: FrameInput;
  values: FrameInput;
}

/** True when the settings ask for any eviction. */
export function evictionEnabled(kv: KvSettings): boolean {
  return kv.evictionRate > 1 || kv.maxCacheTokens !== undefined;
}

export function isLossless(kv: KvSettings): boolean {
  return CODEC_TRAITS[kv.codec].lossless;
}

/**
 * Lets I/O run between layers, so bundles already handed on keep moving. `setImmediate`, not
 * `setTimeout(0)`: under Deno the latter measured 2.4 ms a turn, the former 0.04 ms.
 */
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export class CompressionJob {
  readonly requestId: string;
  readonly kv: KvSettings;
  #kv: PrefillKv;
  #every?: Int32Array;
  /** Layers [0, #checked) are computed and of the right size. */
  #checked = 0;

  /** Positions 0..nPos-1, made once per job: every head that keeps all its KVs shares them. */
  #allPositions(): Int32Array {
    return this.#every ??= allPositions(this.#kv.nPos);
  }

  constructor(requestId: string, kv: KvSettings, prefill: PrefillKv) {
    const { nLayers, nKvHeads, nPos } = prefill;
    if (prefill.layers.length !== nLayers || prefill.metric.length !== nLayers * nKvHeads * nPos) {
      throw new KvrelayError("internal", "prefill output shape disagrees with its metric");
    }
    this.requestId = requestId;
    this.kv = kv;
    this.#kv = prefill;
  }

  /** Waits until prefill has computed layers [0, upTo), then checks their size. */
  async #layersReady(upTo: number): Promise<void> {
    const { nKvHeads, nPos, headDim, layers } = this.#kv;
    if (upTo > 0) await this.#kv.ready?.(upTo - 1);
    for (let l = this.#checked; l < upTo; l++) {
      if (
        layers[l]?.keys.length !== nKvHeads * nPos * headDim ||
        layers[l].values.length !== layers[l].keys.length
      ) {
        throw new KvrelayError("internal", `prefill output layer ${l} of the wrong size`);
      }
    }
    this.#checked = Math.max(this.#checked, upTo);
  }

  /**
   * Evicts, then encodes layer after layer, calling `emit` with each layer's bundle as soon as
   * it is made (not awaited: the caller sends it while the next layer is encoded). With
   * `pipeline: false` every layer is encoded first and `emit` is called afterwards, in order.
   * While prefill still runs (`PrefillKv.ready`), each layer waits for prefill to compute it;
   * eviction waits for every layer.
   */
  async run(
    encoder: FrameEncoder,
    emit: (layer: LayerEncoding) => void,
    opts: { hooks?: CompressionHooks; pipeline?: boolean } = {},
  ): Promise<CompressionOutput> {
    const hooks = opts.hooks ?? {};
    const pipeline = opts.pipeline ?? true;
    const { nLayers } = this.#kv;
    // eviction ranks every layer's blocks at once, so it waits for the whole prompt
    if (evictionEnabled(this.kv)) await this.#layersReady(nLayers);
    const t0 = performance.now();
    const evict = () => evictionEnabled(this.kv) ? this.#plan() : undefined;
    const plan = hooks.evict ? hooks.evict(evict) : evict();
    const evictMs = performance.now() - t0;
    const layers: LayerEncoding[] = [];
    let encodeMs = 0;
    const step = Math.max(1, encoder.layersPerCall);
    // the kept rows of each call's evicted heads, gathered into one buffer reused call after call
    const arena = plan ? acquireArena() : undefined;
    try {
      for (let l0 = 0; l0 < nLayers; l0 += step) {
        await this.#layersReady(Math.min(nLayers, l0 + step));
        const count = Math.min(step, nLayers - l0);
        if (plan && arena) arena.reserve(this.#gatheredFloats(plan, l0, count));
        const group = Array.from({ length: count }, (_, i) => this.#layerFrames(l0 + i, plan, arena));
        const frames = group.flatMap((g) => g.heads.flatMap((h) => [h.keys, h.values]));
        const t1 = performance.now();
        const bytes = await encoder.encodeFrames(frames, frames.map((f) => this.#frameOptions(f)));
        const ms = performance.now() - t1;
        encodeMs += ms;
        let at = 0;
        for (const g of group) {
          const encoded: EncodedHead[] = g.heads.map((h) => ({
            positions: h.positions,
            keys: bytes[at++],
            values: bytes[at++],
          }));
          const layer = this.#layerEncoding(g.layer, plan, g.layerFrame, encoded, ms / group.length);
          // the frames' values are the arena's until the next call: observers read them now
          hooks.layerEncoded?.(layer, g.heads.flatMap((h) => [h.keys, h.values]));
          layers.push(layer);
          if (pipeline) emit(layer);
        }
        if (pipeline && l0 + step < nLayers) await yieldToEventLoop();
      }
    } finally {
      if (arena) releaseArena(arena);
    }
    if (!pipeline) layers.forEach(emit);
    return {
      encoded: layers.map((x) => x.bundle),
      stats: {
        evictMs,
        encodeMs,
        rawBytes: layers.reduce((a, x) => a + x.rawBytes, 0),
        wireBytes: layers.reduce((a, x) => a + x.bundle.length, 0),
        keptFraction: plan ? plan.keptCount / plan.totalCount : 1,
        keptFractionPerLayer: plan ? plan.keptFractionPerLayer : new Array(nLayers).fill(1),
      },
    };
  }

  /** Layer `l`'s frames: one K and one V per KV head, or one layer-wide pair. */
  #layerFrames(
    l: number,
    plan: EvictionPlan | undefined,
    arena: GatherArena | undefined,
  ): { layer: number; layerFrame: boolean; heads: HeadFrames[] } {
    const layerFrame = !plan && this.kv.frames === "layer";
    return {
      layer: l,
      layerFrame,
      heads: layerFrame ? [this.#layerFrame(l)] : this.#headFrames(l, plan, arena),
    };
  }

  /** Values the evicted heads of layers [l0, l0 + count) gather: K and V rows of what they keep. */
  #gatheredFloats(plan: EvictionPlan, l0: number, count: number): number {
    const { nKvHeads, nPos, headDim } = this.#kv;
    let rows = 0;
    for (let i = l0 * nKvHeads; i < (l0 + count) * nKvHeads; i++) {
      const n = plan.kept[i].length;
      if (n !== nPos) rows += n;
    }
    return 2 * rows * headDim;
  }

  #layerEncoding(
    l: number,
    plan: EvictionPlan | undefined,
    layerFrame: boolean,
    heads: EncodedHead[],
    encodeMs: number,
  ): LayerEncoding {
    const { nLayers, nKvHeads, nPos, headDim } = this.#kv;
    const bundle = writeEncodedLayer({
      requestId: this.requestId,
      layer: l,
      nLayers,
      nKvHeads,
      nPos,
      headDim,
      codec: this.kv.codec,
      frames: layerFrame ? "layer" : "head",
      heads,
    });
    return {
      layer: l,
      bundle,
      rawBytes: 2 * 2 * nKvHeads * nPos * headDim, // K and V, 2 bytes a value
      keptFraction: plan ? plan.keptFractionPerLayer[l] : 1,
      frames: heads.flatMap((h) => [h.keys, h.values]),
      encodeMs,
    };
  }

  #plan(): EvictionPlan {
    const plan = this.#planAt();
    const cap = this.kv.maxCacheTokens;
    if (cap === undefined) return plan;
    // max_cache_tokens bounds every head, as decode then holds it while generating; ranked by
    // the metric the plan saw (max-pooled when the request pools)
    const { metric, nPos } = this.#kv;
    let ranked = metric;
    if (this.kv.maxPool > 1) {
      ranked = new Float32Array(metric.length);
      for (let h = 0; h < metric.length / nPos; h++) {
        ranked.set(maxPool1d(metric.subarray(h * nPos, (h + 1) * nPos), this.kv.maxPool), h * nPos);
      }
    }
    return capPlan(plan, ranked, cap, {
      policy: this.kv.eviction,
      blockSize: this.kv.blockSize,
      protectedWindow: this.kv.protectedWindow,
      sink: this.kv.sink,
      floor: this.kv.headFloor,
    });
  }

  #planAt(): EvictionPlan {
    const { nLayers, nKvHeads, nPos, metric } = this.#kv;
    const shape = { nLayers, nKvHeads, nPos };
    const opts = {
      blockSize: this.kv.blockSize,
      rate: this.kv.maxCacheTokens === undefined ? this.kv.evictionRate : undefined,
      maxCacheTokens: this.kv.maxCacheTokens,
      protectedWindow: this.kv.protectedWindow,
      sink: this.kv.sink,
      floor: this.kv.headFloor,
      maxPool: this.kv.maxPool,
    };
    switch (this.kv.eviction) {
      case "uniform":
        return planUniform(metric, shape, opts);
      case "recency":
        return planRecency(metric, shape, opts);
      default:
        return planKvCompress(metric, shape, opts);
    }
  }

  #frameOptions(f: FrameInput): EncodeOptions {
    const o: EncodeOptions = {
      codec: this.kv.codec,
      errorBound: this.kv.errorBound,
      mode: this.kv.errorMode,
      indexShare: this.kv.indexShare,
      role: f.role,
    };
    // A max-ratio codec adapts per frame (no sort, shared sort, token-axis or the model's
    // cross-channel predictor). The CPU codec alone runs that choice: a GPU backend hands these
    // frames to it, so every backend sends the same bytes.
    if (CODEC_TRAITS[this.kv.codec].family === "max-ratio") {
      o.predictor = "auto";
      const set = this.#kv.coefficients;
      if (set && f.head >= 0) Object.assign(o, { coefficients: set, layer: f.layer, head: f.head });
    }
    return o;
  }

  #headFrames(l: number, plan: EvictionPlan | undefined, arena: GatherArena | undefined): HeadFrames[] {
    const { nKvHeads, nPos, headDim } = this.#kv;
    const raw = this.#kv.layers[l];
    const heads: HeadFrames[] = [];
    for (let h = 0; h < nKvHeads; h++) {
      const base = h * nPos * headDim;
      const positions = plan ? plan.kept[l * nKvHeads + h] : this.#allPositions();
      const n = positions.length;
      let k: Float32Array, v: Float32Array;
      if (n === nPos) { // every position kept: the head's rows are already contiguous
        k = raw.keys.subarray(base, base + nPos * headDim);
        v = raw.values.subarray(base, base + nPos * headDim);
      } else {
        k = arena ? arena.take(n * headDim) : new Float32Array(n * headDim);
        v = arena ? arena.take(n * headDim) : new Float32Array(n * headDim);
        gatherRows(raw.keys, base, positions, headDim, k);
        gatherRows(raw.values, base, positions, headDim, v);
      }
      heads.push({
        positions,
        keys: { layer: l, head: h, role: "key", data: k, rows: n, cols: headDim },
        values: { layer: l, head: h, role: "value", data: v, rows: n, cols: headDim },
      });
    }
    return heads;
  }

  /** The poster's layer-wide variant: one frame of rows `[nPos, nKvHeads * headDim]`. */
  #layerFrame(l: number): HeadFrames {
    const { nKvHeads, nPos, headDim } = this.#kv;
    const raw = this.#kv.layers[l];
    const width = nKvHeads * headDim;
    const k = new Float32Array(nPos * width);
    const v = new Float32Array(nPos * width);
    for (let h = 0; h < nKvHeads; h++) {
      for (let p = 0; p < nPos; p++) {
        const src = (h * nPos + p) * headDim;
        const dst = p * width + h * headDim;
        k.set(raw.keys.subarray(src, src + headDim), dst);
        v.set(raw.values.subarray(src, src + headDim), dst);
      }
    }
    return {
      positions: this.#allPositions(),
      keys: { layer: l, head: -1, role: "key", data: k, rows: nPos, cols: width },
      values: { layer: l, head: -1, role: "value", data: v, rows: nPos, cols: width },
    };
  }
}
