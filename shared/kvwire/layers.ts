/**
 * The three bundle kinds of the hand-off, on top of the container:
 * - raw layer (prefill → compression): K and V of one layer, fp32 `[nKvHeads, nPos, headDim]`,
 *   keys after RoPE;
 * - metric (prefill → compression): the eviction metric `[nLayers, nKvHeads, nPos]`;
 * - encoded layer (compression → decode): per KV head the kept positions (a bitmap of
 *   `nPos` bits; empty when all are kept) and codec streams for K and V — one frame per
 *   head (`frames: "head"`), or one frame per layer of shape `[nPos, nKvHeads * headDim]`
 *   when every head keeps every position (`frames: "layer"`).
 * @module
 */
import {
  BundleFormatError,
  BundleKind,
  bytesOf,
  f32,
  intField,
  readBundle,
  section,
  stringField,
  writeBundle,
} from "./container.ts";

const LIMITS = { layers: 4096, heads: 1024, pos: 1 << 22, headDim: 8192 };

export interface KvShape {
  requestId: string;
  nLayers: number;
  nKvHeads: number;
  nPos: number;
  headDim: number;
}

export interface RawLayer extends KvShape {
  layer: number;
  keys: Float32Array; // [nKvHeads, nPos, headDim]
  values: Float32Array; // [nKvHeads, nPos, headDim]
}

export interface MetricBundle extends Omit<KvShape, "headDim"> {
  metric: Float32Array; // [nLayers, nKvHeads, nPos]
}

export interface EncodedHead {
  /** Kept true positions, ascending. */
  positions: Int32Array;
  keys: Uint8Array;
  values: Uint8Array;
}

export interface EncodedLayer extends KvShape {
  layer: number;
  codec: string;
  frames: "head" | "layer";
  /** Per head (frames "head"), or a single entry holding the layer frame (frames "layer"). */
  heads: EncodedHead[];
}

function readShape(h: Record<string, unknown>, withHeadDim: boolean): KvShape {
  return {
    requestId: stringField(h, "requestId"),
    nLayers: intField(h, "nLayers", 1, LIMITS.layers),
    nKvHeads: intField(h, "nKvHeads", 1, LIMITS.heads),
    nPos: intField(h, "nPos", 1, LIMITS.pos),
    headDim: withHeadDim ? intField(h, "headDim", 1, LIMITS.headDim) : 0,
  };
}

export function writeRawLayer(l: RawLayer): Uint8Array {
  const { requestId, layer, nLayers, nKvHeads, nPos, headDim } = l;
  return writeBundle(BundleKind.rawLayer, {
    requestId,
    layer,
    nLayers,
    nKvHeads,
    nPos,
    headDim,
    dtype: "f32",
  }, [
    ["keys", bytesOf(l.keys)],
    ["values", bytesOf(l.values)],
  ]);
}

export function readRawLayer(bytes: Uint8Array): RawLayer {
  const b = readBundle(bytes);
  if (b.kind !== BundleKind.rawLayer) {
    throw new BundleFormatError(`expected a raw layer bundle, got kind ${b.kind}`, 5);
  }
  const shape = readShape(b.header, true);
  const layer = intField(b.header, "layer", 0, shape.nLayers - 1);
  const n = shape.nKvHeads * shape.nPos * shape.headDim * 4;
  return { ...shape, layer, keys: f32(section(b, "keys", n)), values: f32(section(b, "values", n)) };
}

export function writeMetric(m: MetricBundle): Uint8Array {
  const { requestId, nLayers, nKvHeads, nPos } = m;
  return writeBundle(BundleKind.metric, { requestId, nLayers, nKvHeads, nPos }, [[
    "metric",
    bytesOf(m.metric),
  ]]);
}

export function readMetric(bytes: Uint8Array): MetricBundle {
  const b = readBundle(bytes);
  if (b.kind !== BundleKind.metric) {
    throw new BundleFormatError(`expected a metric bundle, got kind ${b.kind}`, 5);
  }
  const { requestId, nLayers, nKvHeads, nPos } = readShape(b.header, false);
  const metric = f32(section(b, "metric", nLayers * nKvHeads * nPos * 4));
  return { requestId, nLayers, nKvHeads, nPos, metric };
}

export function writeEncodedLayer(l: EncodedLayer): Uint8Array {
  const { requestId, layer, nLayers, nKvHeads, nPos, headDim, codec, frames } = l;
  const sections: [string, Uint8Array][] = [];
  const kept: number[] = [];
  l.heads.forEach((h, i) => {
    kept.push(h.positions.length);
    sections.push([
      `p${i}`,
      h.positions.length === nPos ? new Uint8Array(0) : positionsToBitmap(h.positions, nPos),
    ]);
    sections.push([`k${i}`, h.keys], [`v${i}`, h.values]);
  });
  return writeBundle(
    BundleKind.encodedLayer,
    { requestId, layer, nLayers, nKvHeads, nPos, headDim, codec, frames, kept },
    sections,
  );
}

export function readEncodedLayer(bytes: Uint8Array): EncodedLayer {
  const b = readBundle(bytes);
  if (b.kind !== BundleKind.encodedLayer) {
    throw new BundleFormatError(`expected an encoded layer bundle, got kind ${b.kind}`, 5);
  }
  const shape = readShape(b.header, true);
  const layer = intField(b.header, "layer", 0, shape.nLayers - 1);
  const codec = stringField(b.header, "codec");
  const frames = b.header.frames;
  if (frames !== "head" && frames !== "layer") throw new BundleFormatError(`unknown frames '${frames}'`, 12);
  const kept = b.header.kept;
  const nFrames = frames === "head" ? shape.nKvHeads : 1;
  if (!Array.isArray(kept) || kept.length !== nFrames) throw new BundleFormatError("bad 'kept' list", 12);
  const heads: EncodedHead[] = [];
  for (let i = 0; i < nFrames; i++) {
    const k = kept[i];
    if (!Number.isSafeInteger(k) || k < 1 || k > shape.nPos) {
      throw new BundleFormatError(`bad kept count ${k}`, 12);
    }
    if (frames === "layer" && k !== shape.nPos) {
      throw new BundleFormatError("a layer frame must keep every position", 12);
    }
    const p = section(b, `p${i}`);
    const positions = k === shape.nPos && p.length === 0
      ? allPositions(shape.nPos)
      : bitmapToPositions(p, shape.nPos, k);
    heads.push({ positions, keys: section(b, `k${i}`), values: section(b, `v${i}`) });
  }
  return { ...shape, layer, codec, frames, heads };
}

/** Positions 0..n-1: every KV of a head kept. */
export function allPositions(n: number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  return a;
}

export function positionsToBitmap(positions: Int32Array, nPos: number): Uint8Array {
  const bm = new Uint8Array(Math.ceil(nPos / 8));
  for (const p of positions) bm[p >> 3] |= 1 << (p & 7);
  return bm;
}

export function bitmapToPositions(bm: Uint8Array, nPos: number, expected: number): Int32Array {
  if (bm.length !== Math.ceil(nPos / 8)) {
    throw new BundleFormatError(`position bitmap has ${bm.length} bytes`, 12);
  }
  const out = new Int32Array(expected);
  let n = 0;
  for (let p = 0; p < nPos; p++) {
    if (bm[p >> 3] & (1 << (p & 7))) {
      if (n === expected) throw new BundleFormatError("position bitmap holds more positions than 'kept'", 12);
      out[n++] = p;
    }
  }
  // Bits past nPos in the last byte must be clear.
  if (nPos % 8 && bm[bm.length - 1] >> (nPos % 8)) throw new BundleFormatError("bits set past nPos", 12);
  if (n !== expected) {
    throw new BundleFormatError(`position bitmap holds ${n} positions, 'kept' says ${expected}`, 12);
  }
  return out;
}
