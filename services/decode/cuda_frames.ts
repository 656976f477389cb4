/**
 * The decode service's frame decoder on CUDA (KVRELAY_CODEC_DEVICE=cuda): a layer's frames go
 * into one buffer from an `OutputPool` (`decodeManyInto`), so after the first requests the
 * values arrive by DMA into memory that is already page-locked and faulted in, instead of new
 * memory filled through pinned staging. The buffer stays with the request (`held`) until its
 * layers are copied into the block store; then the service gives it back to the pool.
 * @module
 */
import { ByteReader } from "../../shared/codec/bytes.ts";
import { readHeader } from "../../shared/codec/container.ts";
import type { CudaFastCodec } from "../../shared/codec/cuda/mod.ts";
import { carve, type OutputPool } from "../../shared/codec/cuda/output_pool.ts";
import type { FrameDecoder } from "../../shared/pipeline/decode_stage.ts";

/** Values of an f32 stream by its header; undefined when it has none (or another dtype). */
export function f32ValuesOf(stream: Uint8Array, maxElements: number): number | undefined {
  try {
    const h = readHeader(new ByteReader(stream), maxElements);
    return h.dtype === "f32" ? h.shape.reduce((a, b) => a * b, 1) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Decodes a layer's frames into one pooled buffer, pushed onto `held` once the call has
 * settled with every frame; on a failure the buffer goes straight back to the pool. Streams
 * without a readable f32 header go through `decodeMany`, which gives their errors.
 */
export function pooledFrameDecoder(
  cuda: Pick<CudaFastCodec, "decodeMany" | "decodeManyInto">,
  pool: OutputPool,
  held: Float32Array[],
): FrameDecoder {
  return async (streams, limits) => {
    const ns = streams.map((s) => f32ValuesOf(s, limits.maxElements));
    if (ns.some((n) => n === undefined)) return await cuda.decodeMany(streams, limits);
    const sizes = ns as number[];
    const buf = pool.take(sizes.reduce((a, b) => a + b, 0));
    try {
      const tensors = await cuda.decodeManyInto(streams, carve(buf, sizes), limits);
      held.push(buf);
      return tensors;
    } catch (err) {
      pool.give(buf); // the call has settled: nothing writes into it any more
      throw err;
    }
  };
}
