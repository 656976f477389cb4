/**
 * Decode side of the hand-off: turns an encoded layer bundle back into each KV head's
 * surviving keys and values (fp32 `[n, headDim]`) with their true positions, checking every
 * shape against what the model expects. Knows nothing about NATS.
 * @module
 */
import { KvrelayError } from "../errors.ts";
import { type EncodedLayer, readEncodedLayer } from "../kvwire/mod.ts";
import { decode as decodeFrame, type Tensor } from "../codec/mod.ts";
import { ByteReader } from "../codec/bytes.ts";
import { readHeader } from "../codec/container.ts";

export interface HeadKv {
  positions: Int32Array;
  keys: Float32Array; // [n, headDim]
  values: Float32Array; // [n, headDim]
}

export interface DecodedLayer {
  requestId: string;
  layer: number;
  nPos: number;
  heads: HeadKv[];
}

/** What a bundle must match to be decoded for a model, and the most values one frame may hold. */
export interface BundleExpectation {
  nLayers: number;
  nKvHeads: number;
  headDim: number;
  maxElements: number;
}

/** A model's expectation: its shape, and at most one head's KVs over its whole context per frame. */
export function bundleExpectation(
  c: { nLayers: number; nKvHeads: number; headDim: number; maxSeqLen: number },
): BundleExpectation {
  return {
    nLayers: c.nLayers,
    nKvHeads: c.nKvHeads,
    headDim: c.headDim,
    maxElements: c.maxSeqLen * c.nKvHeads * c.headDim,
  };
}

/** Decodes many codec streams at once (a GPU backend's `decodeMany`): `out[i]` is `decode(streams[i])`. */
export type FrameDecoder = (streams: Uint8Array[], limits: { maxElements: number }) => Promise<Tensor[]>;

export function decodeLayerBundle(bytes: Uint8Array, expect: BundleExpectation): DecodedLayer {
  const l = checkedLayer(bytes, expect);
  const sizes = frameSizes(l, expect);
  return assembleLayer(l, (stream) => decodeFrame(stream, { maxElements: sizes.get(stream)! }));
}

/**
 * {@linkcode decodeLayerBundle} with the layer's frames decoded together by `decodeFrames` (one
 * GPU batch for all K and V frames of the layer); same values, same errors.
 */
export async function decodeLayerBundleWith(
  bytes: Uint8Array,
  expect: BundleExpectation,
  decodeFrames: FrameDecoder,
): Promise<DecodedLayer> {
  const l = checkedLayer(bytes, expect);
  frameSizes(l, expect); // before a decoder sizes its output by what a stream claims
  const streams = l.heads.flatMap((h) => [h.keys, h.values]);
  let tensors: Tensor[];
  try {
    tensors = await decodeFrames(streams, { maxElements: expect.maxElements });
  } catch (err) {
    throw new KvrelayError("corrupt_bundle", `a frame did not decode: ${(err as Error)?.message ?? err}`, {
      cause: err,
    });
  }
  const byStream = new Map(streams.map((s, i) => [s, tensors[i]]));
  return assembleLayer(l, (stream) => byStream.get(stream)!);
}

function checkedLayer(bytes: Uint8Array, expect: BundleExpectation): EncodedLayer {
  const l = readEncodedLayer(bytes);
  if (l.nLayers !== expect.nLayers || l.nKvHeads !== expect.nKvHeads || l.headDim !== expect.headDim) {
    throw new KvrelayError(
      "corrupt_bundle",
      `bundle shape (${l.nLayers} layers, ${l.nKvHeads} KV heads, head_dim ${l.headDim}) does not fit this model`,
    );
  }
  return l;
}

/**
 * The value count of each K and V frame of the layer, from its positions, after checking that
 * each frame's header claims exactly that: a stream that claims more (up to the model's whole
 * context) would otherwise have its decoder allocate for it before any check of its body.
 */
function frameSizes(l: EncodedLayer, expect: BundleExpectation): Map<Uint8Array, number> {
  const sizes = new Map<Uint8Array, number>();
  l.heads.forEach((h, i) => {
    const rows = l.frames === "layer" ? l.nPos : h.positions.length;
    const cols = l.frames === "layer" ? l.nKvHeads * l.headDim : l.headDim;
    for (const [role, stream] of [["K", h.keys], ["V", h.values]] as const) {
      let shape: number[];
      try {
        shape = readHeader(new ByteReader(stream), expect.maxElements).shape;
      } catch (err) {
        throw new KvrelayError("corrupt_bundle", `${role} frame ${i}: ${(err as Error).message}`, {
          cause: err,
        });
      }
      if (shape.length !== 2 || shape[0] !== rows || shape[1] !== cols) {
        throw new KvrelayError(
          "corrupt_bundle",
          `${role} frame ${i} claims [${shape.join(",")}] values, its positions say [${rows},${cols}]`,
        );
      }
      sizes.set(stream, rows * cols);
    }
  });
  return sizes;
}

/** The layer's heads from its decoded frames (`frame(stream)` gives a stream's tensor). */
function assembleLayer(
  l: EncodedLayer,
  frame: (stream: Uint8Array) => Tensor,
): DecodedLayer {
  const { headDim, nKvHeads } = l;
  if (l.frames === "layer") {
    const f = l.heads[0];
    const width = nKvHeads * headDim;
    const k = toF32(frame(f.keys), l.nPos, width);
    const v = toF32(frame(f.values), l.nPos, width);
    const heads: HeadKv[] = [];
    for (let h = 0; h < nKvHeads; h++) {
      const hk = new Float32Array(l.nPos * headDim);
      const hv = new Float32Array(l.nPos * headDim);
      for (let p = 0; p < l.nPos; p++) {
        hk.set(k.subarray(p * width + h * headDim, p * width + (h + 1) * headDim), p * headDim);
        hv.set(v.subarray(p * width + h * headDim, p * width + (h + 1) * headDim), p * headDim);
      }
      heads.push({ positions: f.positions, keys: hk, values: hv });
    }
    return { requestId: l.requestId, layer: l.layer, nPos: l.nPos, heads };
  }
  const heads = l.heads.map((h) => ({
    positions: h.positions,
    keys: toF32(frame(h.keys), h.positions.length, headDim),
    values: toF32(frame(h.values), h.positions.length, headDim),
  }));
  return { requestId: l.requestId, layer: l.layer, nPos: l.nPos, heads };
}

function toF32(
  t: { dtype: string; shape: number[]; data: Float32Array | Uint16Array },
  rows: number,
  cols: number,
) {
  if (t.dtype !== "f32" || t.shape.length !== 2 || t.shape[0] !== rows || t.shape[1] !== cols) {
    throw new KvrelayError(
      "corrupt_bundle",
      `frame decoded to ${t.dtype}[${t.shape.join(",")}], expected f32[${rows},${cols}]`,
    );
  }
  return t.data as Float32Array;
}
