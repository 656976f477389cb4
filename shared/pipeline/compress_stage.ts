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
import { encode as encodeFrame } from "../codec/mod.ts";
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
    const headDim = this.#layers[0].headDim;

    const t0 = performance.now();
    const evict = () => evictionEnabled(this.kv) ? this.#plan(m) : undefined;
    const plan = hooks.evict ? hooks.evict(evict) : evict();
    const evictMs = performance.now() - t0;

    const t1 = performance.now();
    const encoded: Uint8Array[] = [];
    let rawBytes = 0;
    let wireBytes = 0;
    for (let l = 0; l < nLayers; l++) {
      const encodeLayer = (): LayerEncoding => {
        const raw = this.#layers[l];
        const layerFrame = !plan && this.kv.frames === "layer";
        const heads = layerFrame ? [this.#encodeLayerFrame(raw, hooks)] : this.#encodeHeads(raw, plan, hooks);
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
          rawBytes: raw.keys.byteLength + raw.values.byteLength,
          keptFraction: plan ? plan.keptFractionPerLayer[l] : 1,
          frames: heads.flatMap((h) => [h.keys, h.values]),
        };
      };
      const out = hooks.encodeLayer ? hooks.encodeLayer(l, encodeLayer) : encodeLayer();
      rawBytes += out.rawBytes;
      wireBytes += out.bundle.length;
      encoded.push(out.bundle);
    }
    const encodeMs = performance.now() - t1;
    this.#layers = [];
    return {
      encoded,
      stats: {
        evictMs,
        encodeMs,
        rawBytes,
        wireBytes,
        keptFraction: plan ? plan.keptCount / plan.totalCount : 1,
        keptFractionPerLayer: plan ? plan.keptFractionPerLayer : new Array(nLayers).fill(1),
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

  #encodeHeads(raw: RawLayer, plan: EvictionPlan | undefined, hooks: CompressionHooks): EncodedHead[] {
    const { nKvHeads, nPos, headDim } = raw;
    const heads: EncodedHead[] = [];
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
        keys: this.#encodeFrame(
          { layer: raw.layer, head: h, role: "key", data: k, rows: n, cols: headDim },
          hooks,
        ),
        values: this.#encodeFrame(
          { layer: raw.layer, head: h, role: "value", data: v, rows: n, cols: headDim },
          hooks,
        ),
      });
    }
    return heads;
  }

  /** The poster's layer-wide variant: one frame of rows `[nPos, nKvHeads * headDim]`. */
  #encodeLayerFrame(raw: RawLayer, hooks: CompressionHooks): EncodedHead {
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
      keys: this.#encodeFrame(
        { layer: raw.layer, head: -1, role: "key", data: k, rows: nPos, cols: width },
        hooks,
      ),
      values: this.#encodeFrame(
        { layer: raw.layer, head: -1, role: "value", data: v, rows: nPos, cols: width },
        hooks,
      ),
    };
  }
}
