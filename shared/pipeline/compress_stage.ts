/**
 * Compression side of the hand-off: collects one request's raw bundles, evicts (all layers
 * and heads compete, so the rate varies per head), then encodes the survivors of each
 * (layer, KV head) as K and V frames with the chosen codec. Knows nothing about NATS.
 * @module
 */
import { KvrelayError } from "../errors.ts";
import {
  allPositions,
  type EncodedHead,
  type MetricBundle,
  type RawLayer,
  readMetric,
  readRawLayer,
  writeEncodedLayer,
} from "../kvwire/mod.ts";
import { encode as encodeFrame, type EncodeOptions, type Tensor } from "../codec/mod.ts";
import { type EvictionPlan, planKvCompress, planRecency, planUniform } from "../eviction/mod.ts";
import type { KvSettings } from "../handoff/contract.ts";

export interface CompressionStats {
  evictMs: number;
  encodeMs: number;
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

/** One layer's encoding, as {@linkcode CompressionHooks.encodeLayer} sees it. */
export interface LayerEncoding {
  layer: number;
  /** The encoded layer bundle sent to decode. */
  bundle: Uint8Array;
  /** fp32 bytes of the layer's K and V before eviction. */
  rawBytes: number;
  /** Kept KVs / prompt KVs of this layer. */
  keptFraction: number;
  /** The layer's encoded K and V frames (for `inspect`: error bound, index share). */
  frames: Uint8Array[];
}

/** One K or V frame about to be encoded, as {@linkcode CompressionHooks.encodeFrame} sees it. */
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

/** Optional wrappers around the stages of `finish()` (tracing, metrics); each must call `run` once. */
export interface CompressionHooks {
  evict?: <T>(run: () => T) => T;
  encodeLayer?: (layer: number, run: () => LayerEncoding) => LayerEncoding;
  encodeFrame?: (frame: FrameInput, run: () => Uint8Array) => Uint8Array;
}

/** An asynchronous frame encoder with the CPU codec's signature (the WebGPU codec's `encode`). */
export type AsyncFrameEncoder = (t: Tensor, opts: EncodeOptions) => Promise<Uint8Array>;

/**
 * Encodes many frames in one call (the WebGPU codec's `encodeMany`: one GPU submission per
 * stage for all of them); `out[i]` is what the CPU codec gives `frames[i]` with `opts[i]`.
 */
export interface BatchFrameEncoder {
  encodeMany(frames: Tensor[], opts: EncodeOptions[]): Promise<Uint8Array[]>;
}

/** {@linkcode CompressionHooks} for {@linkcode CompressionJob.finishAsync}; each must call `run` once. */
export interface AsyncCompressionHooks {
  evict?: <T>(run: () => T) => T;
  encodeLayer?: (layer: number, run: () => Promise<LayerEncoding>) => Promise<LayerEncoding>;
  encodeFrame?: (frame: FrameInput, run: () => Promise<Uint8Array>) => Promise<Uint8Array>;
}

/** One head's (or the layer-wide) K and V frames before encoding. */
interface HeadFrames {
  positions: Int32Array;
  keys: FrameInput;
  values: FrameInput;
}

const LOSSLESS = new Set(["zstd", "raw"]);

/** True when the settings ask for any eviction. */
export function evictionEnabled(kv: KvSettings): boolean {
  return kv.evictionRate > 1 || kv.maxCacheTokens !== undefined;
}

export function isLossless(kv: KvSettings): boolean {
  return LOSSLESS.has(kv.codec);
}

export class CompressionJob {
  readonly requestId: string;
  readonly kv: KvSettings;
  #metric?: MetricBundle;
  #layers: RawLayer[] = [];

  constructor(requestId: string, kv: KvSettings) {
    this.requestId = requestId;
    this.kv = kv;
  }

  /** Takes bundle `index` of the prefill transfer: 0 is the metric, 1 + l is layer l. */
  accept(index: number, bytes: Uint8Array): void {
    if (index === 0) {
      this.#metric = readMetric(bytes);
      this.#checkRequest(this.#metric.requestId);
      return;
    }
    const layer = readRawLayer(bytes);
    this.#checkRequest(layer.requestId);
    if (layer.layer !== index - 1) {
      throw new KvrelayError(
        "corrupt_bundle",
        `bundle ${index} holds layer ${layer.layer}, expected ${index - 1}`,
      );
    }
    this.#layers[layer.layer] = layer;
  }

  #checkRequest(id: string): void {
    if (id !== this.requestId) {
      throw new KvrelayError(
        "corrupt_bundle",
        `bundle of request ${id} arrived for request ${this.requestId}`,
      );
    }
  }

  /** Evicts and encodes; every layer and the metric must have arrived. */
  finish(hooks: CompressionHooks = {}): CompressionOutput {
    const { m, plan, evictMs } = this.#prepare(hooks.evict);
    const t1 = performance.now();
    const layers: LayerEncoding[] = [];
    for (let l = 0; l < m.nLayers; l++) {
      const encodeLayer = (): LayerEncoding => {
        const { layerFrame, heads } = this.#layerFrames(l, plan);
        const encoded = heads.map((h) => ({
          positions: h.positions,
          keys: this.#encodeFrame(h.keys, hooks),
          values: this.#encodeFrame(h.values, hooks),
        }));
        return this.#layerEncoding(l, m, plan, layerFrame, encoded);
      };
      layers.push(hooks.encodeLayer ? hooks.encodeLayer(l, encodeLayer) : encodeLayer());
    }
    return this.#output(m, plan, layers, evictMs, performance.now() - t1);
  }

  /**
   * {@linkcode finish} with an asynchronous encoder (the WebGPU codec). A frame encoder
   * encodes the frames of a layer concurrently, layers one after another; a
   * {@linkcode BatchFrameEncoder} gets every K and V frame of the request in one call, and
   * each layer then waits for its frames (so the first layer's `encodeLayer`/`encodeFrame`
   * hooks time the whole batch). Same bundles as `finish` whenever the encoder gives the CPU
   * codec's bytes.
   */
  async finishAsync(
    encode: AsyncFrameEncoder | BatchFrameEncoder,
    hooks: AsyncCompressionHooks = {},
  ): Promise<CompressionOutput> {
    const { m, plan, evictMs } = this.#prepare(hooks.evict);
    const t1 = performance.now();
    const tensor = (f: FrameInput): Tensor => ({ dtype: "f32", shape: [f.rows, f.cols], data: f.data });
    let frameBytes: (f: FrameInput) => Promise<Uint8Array>;
    let framesOf = (l: number) => this.#layerFrames(l, plan);
    if (typeof encode === "function") {
      frameBytes = (f) => encode(tensor(f), this.#frameOptions(f.role));
    } else {
      const all = Array.from({ length: m.nLayers }, (_, l) => this.#layerFrames(l, plan));
      framesOf = (l) => all[l];
      const frames = all.flatMap((x) => x.heads.flatMap((h) => [h.keys, h.values]));
      const batch = encode.encodeMany(frames.map(tensor), frames.map((f) => this.#frameOptions(f.role)));
      batch.catch(() => {}); // a failure reaches the caller through the first layer that awaits it
      const at = new Map(frames.map((f, i) => [f, i]));
      frameBytes = async (f) => (await batch)[at.get(f)!];
    }
    const layers: LayerEncoding[] = [];
    for (let l = 0; l < m.nLayers; l++) {
      const encodeLayer = async (): Promise<LayerEncoding> => {
        const { layerFrame, heads } = framesOf(l);
        const one = (f: FrameInput) =>
          hooks.encodeFrame ? hooks.encodeFrame(f, () => frameBytes(f)) : frameBytes(f);
        const encoded = await Promise.all(heads.map(async (h) => {
          const [keys, values] = await Promise.all([one(h.keys), one(h.values)]);
          return { positions: h.positions, keys, values };
        }));
        return this.#layerEncoding(l, m, plan, layerFrame, encoded);
      };
      layers.push(await (hooks.encodeLayer ? hooks.encodeLayer(l, encodeLayer) : encodeLayer()));
    }
    return this.#output(m, plan, layers, evictMs, performance.now() - t1);
  }

  /** Checks that everything arrived and evicts. */
  #prepare(evictHook?: <T>(run: () => T) => T): {
    m: MetricBundle;
    plan: EvictionPlan | undefined;
    evictMs: number;
  } {
    const m = this.#metric;
    if (!m) throw new KvrelayError("corrupt_bundle", "the eviction metric bundle never arrived");
    const { nLayers, nKvHeads, nPos } = m;
    for (let l = 0; l < nLayers; l++) {
      const layer = this.#layers[l];
      if (!layer) throw new KvrelayError("corrupt_bundle", `layer ${l} never arrived`);
      if (layer.nLayers !== nLayers || layer.nKvHeads !== nKvHeads || layer.nPos !== nPos) {
        throw new KvrelayError("corrupt_bundle", `layer ${l} shape disagrees with the metric`);
      }
    }
    const t0 = performance.now();
    const evict = () => evictionEnabled(this.kv) ? this.#plan(m) : undefined;
    const plan = evictHook ? evictHook(evict) : evict();
    return { m, plan, evictMs: performance.now() - t0 };
  }

  /** Layer `l`'s frames: one K and one V per KV head, or one layer-wide pair. */
  #layerFrames(l: number, plan: EvictionPlan | undefined): { layerFrame: boolean; heads: HeadFrames[] } {
    const raw = this.#layers[l];
    const layerFrame = !plan && this.kv.frames === "layer";
    return { layerFrame, heads: layerFrame ? [this.#layerFrame(raw)] : this.#headFrames(raw, plan) };
  }

  #layerEncoding(
    l: number,
    m: MetricBundle,
    plan: EvictionPlan | undefined,
    layerFrame: boolean,
    heads: EncodedHead[],
  ): LayerEncoding {
    const raw = this.#layers[l];
    const bundle = writeEncodedLayer({
      requestId: this.requestId,
      layer: l,
      nLayers: m.nLayers,
      nKvHeads: m.nKvHeads,
      nPos: m.nPos,
      headDim: this.#layers[0].headDim,
      codec: this.kv.codec,
      frames: layerFrame ? "layer" : "head",
      heads,
    });
    return {
      layer: l,
      bundle,
      rawBytes: raw.keys.byteLength + raw.values.byteLength,
      keptFraction: plan ? plan.keptFractionPerLayer[l] : 1,
      frames: heads.flatMap((h) => [h.keys, h.values]),
    };
  }

  #output(
    m: MetricBundle,
    plan: EvictionPlan | undefined,
    layers: LayerEncoding[],
    evictMs: number,
    encodeMs: number,
  ): CompressionOutput {
    this.#layers = [];
    return {
      encoded: layers.map((x) => x.bundle),
      stats: {
        evictMs,
        encodeMs,
        rawBytes: layers.reduce((a, x) => a + x.rawBytes, 0),
        wireBytes: layers.reduce((a, x) => a + x.bundle.length, 0),
        keptFraction: plan ? plan.keptCount / plan.totalCount : 1,
        keptFractionPerLayer: plan ? plan.keptFractionPerLayer : new Array(m.nLayers).fill(1),
      },
    };
  }

  #plan(m: MetricBundle): EvictionPlan {
    const shape = { nLayers: m.nLayers, nKvHeads: m.nKvHeads, nPos: m.nPos };
    const opts = {
      blockSize: this.kv.blockSize,
      rate: this.kv.maxCacheTokens === undefined ? this.kv.evictionRate : undefined,
      maxCacheTokens: this.kv.maxCacheTokens,
      protectedWindow: this.kv.protectedWindow,
      sink: this.kv.sink,
      maxPool: this.kv.maxPool,
    };
    switch (this.kv.eviction) {
      case "uniform":
        return planUniform(m.metric, shape, opts);
      case "recency":
        return planRecency(m.metric, shape, opts);
      default:
        return planKvCompress(m.metric, shape, opts);
    }
  }

  #frameOptions(role: "key" | "value") {
    return {
      codec: this.kv.codec,
      errorBound: this.kv.errorBound,
      mode: this.kv.errorMode,
      indexShare: this.kv.indexShare,
      role,
    };
  }

  #encodeFrame(f: FrameInput, hooks: CompressionHooks): Uint8Array {
    const run = () =>
      encodeFrame({ dtype: "f32", shape: [f.rows, f.cols], data: f.data }, this.#frameOptions(f.role));
    return hooks.encodeFrame ? hooks.encodeFrame(f, run) : run();
  }

  #headFrames(raw: RawLayer, plan: EvictionPlan | undefined): HeadFrames[] {
    const { nKvHeads, nPos, headDim } = raw;
    const heads: HeadFrames[] = [];
    for (let h = 0; h < nKvHeads; h++) {
      const positions = plan ? plan.kept[raw.layer * nKvHeads + h] : allPositions(nPos);
      const n = positions.length;
      const k = new Float32Array(n * headDim);
      const v = new Float32Array(n * headDim);
      const base = h * nPos * headDim;
      for (let i = 0; i < n; i++) {
        const src = base + positions[i] * headDim;
        k.set(raw.keys.subarray(src, src + headDim), i * headDim);
        v.set(raw.values.subarray(src, src + headDim), i * headDim);
      }
      heads.push({
        positions,
        keys: { layer: raw.layer, head: h, role: "key", data: k, rows: n, cols: headDim },
        values: { layer: raw.layer, head: h, role: "value", data: v, rows: n, cols: headDim },
      });
    }
    return heads;
  }

  /** The poster's layer-wide variant: one frame of rows `[nPos, nKvHeads * headDim]`. */
  #layerFrame(raw: RawLayer): HeadFrames {
    const { nKvHeads, nPos, headDim } = raw;
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
      positions: allPositions(nPos),
      keys: { layer: raw.layer, head: -1, role: "key", data: k, rows: nPos, cols: width },
      values: { layer: raw.layer, head: -1, role: "value", data: v, rows: nPos, cols: width },
    };
  }
}
