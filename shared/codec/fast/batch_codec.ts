/**
 * What every device backend of the fast format offers (WebGPU: ../webgpu/fast/codec.ts, CUDA:
 * ../cuda/codec.ts), so the hand-off and decode take either: many frames a call, with the CPU
 * codec's streams and values.
 * @module
 */
import type { DecodeLimits, EncodeOptions, Tensor } from "../types.ts";

/** The fast codec's batch calls on one device. */
export interface FastBatchCodec {
  /** Streams of `encode(t, opts)` for every frame (one options object each, or one for all). */
  encodeMany(frames: Tensor[], opts: EncodeOptions | EncodeOptions[]): Promise<Uint8Array[]>;
  /** Like `encodeMany`, one settled result per frame (a frame with bad options fails alone). */
  encodeManySettled(
    frames: Tensor[],
    opts: EncodeOptions | EncodeOptions[],
  ): Promise<PromiseSettledResult<Uint8Array>[]>;
  /** Tensors of `decode(bytes)` for every stream; rejects with the first stream's error. */
  decodeMany(streams: Uint8Array[], limits?: DecodeLimits): Promise<Tensor[]>;
}
