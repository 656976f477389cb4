/**
 * Compression side of the hand-off: collects one request's raw bundles, evicts (all layers
 * and heads compete, so the rate varies per head), then encodes the survivors of each
 * (layer, KV head) as K and V frames with the chosen codec. Knows nothing about NATS.
 * @module
 */
import { KvrelayError } from "../errors.ts";
import {
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
  finish(): CompressionOutput {
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
    const plan = evictionEnabled(this.kv) ? this.#plan(m) : undefined;
    const evictMs = performance.now() - t0;

    const t1 = performance.now();
    const encoded: Uint8Array[] = [];
    let rawBytes = 0;
    let wireBytes = 0;
    for (let l = 0; l < nLayers; l++) {
      const raw = this.#layers[l];
      rawBytes += raw.keys.byteLength + raw.values.byteLength;
      const layerFrame = !plan && this.kv.frames === "layer";
      const heads = layerFrame ? [this.#encodeLayerFrame(raw)] : this.#encodeHeads(raw, plan);
      const bytes = writeEncodedLayer({
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
      wireBytes += bytes.length;
      encoded.push(bytes);
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

  #encodeHeads(raw: RawLayer, plan?: EvictionPlan): EncodedHead[] {
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
        keys: encodeFrame({ dtype: "f32", shape: [n, headDim], data: k }, this.#frameOptions("key")),
        values: encodeFrame({ dtype: "f32", shape: [n, headDim], data: v }, this.#frameOptions("value")),
      });
    }
    return heads;
  }

  /** The poster's layer-wide variant: one frame of rows `[nPos, nKvHeads * headDim]`. */
  #encodeLayerFrame(raw: RawLayer): EncodedHead {
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
      keys: encodeFrame({ dtype: "f32", shape: [nPos, width], data: k }, this.#frameOptions("key")),
      values: encodeFrame({ dtype: "f32", shape: [nPos, width], data: v }, this.#frameOptions("value")),
    };
  }
}

export function allPositions(n: number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  return a;
}
