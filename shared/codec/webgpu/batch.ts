/**
 * Many frames through the GPU encoder together. Each frame runs the single-frame encoder
 * (encode.ts `encodeStaged`, so its stream is byte for byte the one `gpuEncode` makes),
 * but its three GPU round trips are gathered: when every frame still running has asked
 * for its next read-back, all their command encoders go to the queue in one submission
 * and come back through one staging buffer. A batch of N small frames thus costs three
 * GPU↔CPU round trips instead of 3·N; the CPU stages (tables, Huffman lengths, assembly,
 * zstd) run for one frame while the others wait on the same submission.
 *
 * What it does not do: share buffers between frames (each keeps its own, as alone), or
 * overlap one frame's CPU assembly with another's GPU work. Frames that fall back to the
 * CPU codec simply leave the batch. Batches are cut at `MAX_BATCH_VALUES` values so GPU
 * memory stays bounded.
 * @module
 */
import type { EncodeOptions, Tensor } from "../types.ts";
import { encodeStaged, type GpuRunInfo, type GpuRunOptions } from "./encode.ts";
import type { GpuContext, Profiler } from "./gpu.ts";

/** Values of one batch at most (frames beyond go to the next batch, after this one). */
export const MAX_BATCH_VALUES = 1 << 24;

interface Waiting {
  job: { enc: GPUCommandEncoder; prof: Profiler; parts: [GPUBuffer, number][] };
  resolve: (bytes: Uint8Array[]) => void;
  reject: (err: unknown) => void;
}

/** One frame's stream and run info, as `gpuEncode` gives it. */
export type Encoded = { bytes: Uint8Array; info: GpuRunInfo };

/** Encodes `frames` (options per frame, or one for all); results in input order, like `gpuEncode` each. */
export async function gpuEncodeMany(
  ctx: GpuContext,
  frames: Tensor[],
  opts: EncodeOptions | EncodeOptions[],
  run: GpuRunOptions = {},
): Promise<Encoded[]> {
  const settled = await gpuEncodeManySettled(ctx, frames, opts, run);
  const failed = settled.find((s) => s.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return settled.map((s) => (s as PromiseFulfilledResult<Encoded>).value);
}

/**
 * Like `gpuEncodeMany`, but each frame settles on its own: a frame that fails (bad options,
 * a GPU error) is a rejected entry and the other frames' streams still come back.
 */
export async function gpuEncodeManySettled(
  ctx: GpuContext,
  frames: Tensor[],
  opts: EncodeOptions | EncodeOptions[],
  run: GpuRunOptions = {},
): Promise<PromiseSettledResult<Encoded>[]> {
  if (Array.isArray(opts) && opts.length !== frames.length) {
    throw new TypeError(`${frames.length} frames but ${opts.length} option sets`);
  }
  const optsOf = (i: number) => Array.isArray(opts) ? opts[i] : opts;
  const out: PromiseSettledResult<Encoded>[] = [];
  let start = 0;
  while (start < frames.length) {
    let end = start + 1, values = frames[start].data.length;
    while (end < frames.length && values + frames[end].data.length <= MAX_BATCH_VALUES) {
      values += frames[end++].data.length;
    }
    const idx = Array.from({ length: end - start }, (_, i) => start + i);
    out.push(...await oneBatch(ctx, idx.map((i) => frames[i]), idx.map(optsOf), run));
    start = end;
  }
  return out;
}

async function oneBatch(
  ctx: GpuContext,
  frames: Tensor[],
  opts: EncodeOptions[],
  run: GpuRunOptions,
): Promise<PromiseSettledResult<Encoded>[]> {
  let live = frames.length;
  let waiting: Waiting[] = [];
  const flush = () => {
    if (live === 0 || waiting.length < live) return;
    const group = waiting;
    waiting = [];
    ctx.readBackMany(group.map((w) => w.job)).then(
      (res) => group.forEach((w, i) => w.resolve(res[i])),
      (err) => group.forEach((w) => w.reject(err)),
    );
  };
  const readBack = (enc: GPUCommandEncoder, prof: Profiler, parts: [GPUBuffer, number][]) =>
    new Promise<Uint8Array[]>((resolve, reject) => {
      waiting.push({ job: { enc, prof, parts }, resolve, reject });
      flush();
    });
  return await Promise.allSettled(frames.map(async (t, i) => {
    try {
      return await encodeStaged(ctx, t, opts[i], run, readBack);
    } finally {
      live--;
      flush();
    }
  }));
}
