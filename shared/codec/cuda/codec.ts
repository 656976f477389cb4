/**
 * The fast codec on CUDA: `encodeMany` gives the CPU encoder's streams byte for byte,
 * `decodeMany` the CPU decoder's values bit for bit (and its errors). The `...WithInfo` encode
 * calls also take per-call options, among them `streamDtype: "f32"`: f32 streams of fp16 input
 * widened on the device (./encode.ts). One library per process and one call on it at a time
 * (its device buffers are shared), so calls queue here.
 * @module
 */
import type { DecodeLimits, EncodeOptions, Tensor } from "../types.ts";
import { type CudaEncodeResult, cudaFastEncodeMany, type CudaRunOptions } from "./encode.ts";
import { type CudaDecodeResult, type CudaDecodeRunOptions, cudaFastDecodeMany } from "./decode.ts";
import { type CudaLibrary, loadCudaLibrary } from "./library.ts";
import type { FastBatchCodec } from "../fast/batch_codec.ts";
import { HostRegistry } from "./pinned.ts";

/** The fast codec's batch calls on the CUDA device. */
export interface CudaFastCodec extends FastBatchCodec {
  /** The device's name, compute capability and memory. */
  readonly device: string;
  /**
   * Like `encodeManySettled`, with where each frame ran and the call's timing. `run` is laid over
   * the codec's own (its `subBatchBytes` stays unless `run` names one); with
   * `streamDtype: "f32"` every stream is `encode(toFloat32(t), opts)` instead of `encode(t, opts)`.
   */
  encodeManyWithInfo(
    frames: Tensor[],
    opts: EncodeOptions | EncodeOptions[],
    run?: CudaRunOptions,
  ): Promise<CudaEncodeResult>;
  /**
   * Like `encodeManyWithInfo`, the GPU frames' streams written into `out` when it holds them all
   * (views into it: a buffer reused across calls skips faulting in new pages), else into new
   * memory. `out` must not be touched until the promise settles, nor reused while the streams are.
   */
  encodeManyIntoWithInfo(
    frames: Tensor[],
    opts: EncodeOptions | EncodeOptions[],
    out: Uint8Array,
    run?: CudaRunOptions,
  ): Promise<CudaEncodeResult>;
  /** Tensors of `decode(bytes)` for every stream; rejects with the first stream's error. */
  decodeManyWithInfo(
    streams: Uint8Array[],
    limits?: DecodeLimits,
    run?: CudaDecodeRunOptions,
  ): Promise<CudaDecodeResult>;
  /**
   * Like `decodeMany`, into the caller's outputs: stream i's values go to the head of `outs[i]`
   * (the tensors view them). Each output's buffer is page-locked the first time, and the codec
   * holds it so until it needs the room (pinned.ts), so reused outputs take the values by DMA. An output too short, or a stream that does
   * not decode to f32, is that stream's error; a stream that fails leaves its output as it was.
   * The outputs must not overlap one another or the streams, nor be touched until the promise settles.
   */
  decodeManyInto(streams: Uint8Array[], outs: Float32Array[], limits?: DecodeLimits): Promise<Tensor[]>;
  decodeManyIntoWithInfo(
    streams: Uint8Array[],
    outs: Float32Array[],
    limits?: DecodeLimits,
    run?: CudaDecodeRunOptions,
  ): Promise<CudaDecodeResult>;
  /** Host memory page-locked for copies (frames uploaded, outputs decoded into). */
  memory(): { registeredBytes: number; registerFailures: number };
}

/** Options of {@linkcode createCudaFastCodec}. */
export interface CudaCodecOptions {
  /** The library (default `<repo>/.cuda/libkvrelay_cuda.so`; config: KVRELAY_CUDA_LIB). */
  libPath?: string;
  /** The CUDA device index (default 0; config: KVRELAY_CUDA_DEVICE). */
  device?: number;
  /** Sub-batch size of encode calls (default 64 MiB of f32). */
  subBatchBytes?: number;
  /** Sub-batch size of decode calls (default 128 MiB of f32 output). */
  decodeSubBatchBytes?: number;
}

/**
 * What each library shares among the codecs on it: the last call queued (its calls run one at a
 * time, whichever codec makes them) and the page-locked buffers (one budget, and a buffer one
 * codec registered is registered for all: CUDA refuses a second registration of the same pages).
 */
const shared = new WeakMap<CudaLibrary, { last: Promise<unknown>; registry: HostRegistry }>();

function firstRejection<T>(settled: PromiseSettledResult<T>[]): T[] {
  const failed = settled.find((s) => s.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
}

/**
 * Loads the library (a `CudaUnavailableError` when it or a device is missing) and gives the
 * codec on device 0.
 *
 * @example
 * ```ts ignore
 * import { createCudaFastCodec } from "./codec.ts";
 * const cuda = createCudaFastCodec();
 * const t = { dtype: "f32" as const, shape: [64, 8], data: Float32Array.from({ length: 512 }, (_, i) => Math.sin(i)) };
 * const [bytes] = await cuda.encodeMany([t], { codec: "fast", errorBound: 1e-3, mode: "abs" });
 * const [back] = await cuda.decodeMany([bytes]);
 * ```
 */
export function createCudaFastCodec(opts: CudaCodecOptions = {}): CudaFastCodec {
  const lib = loadCudaLibrary(opts.libPath, opts.device);
  // the queue and the registry are the library's, not this codec's: a second codec on the same
  // library (loadCudaLibrary gives it the same one) must not run a call beside this one's on the
  // library's device buffers
  const queue = shared.get(lib) ?? { last: Promise.resolve(), registry: new HostRegistry(lib.symbols) };
  shared.set(lib, queue);
  const registry = queue.registry;
  /** Runs `job` after every call before it on the library (one library call at a time). */
  const inTurn = <T>(job: () => Promise<T>): Promise<T> => {
    const next = queue.last.then(job, job);
    queue.last = next.catch(() => {});
    return next;
  };
  const run: CudaRunOptions = { subBatchBytes: opts.subBatchBytes };
  /** A call's options over the codec's. */
  const runOf = (r: CudaRunOptions = {}): CudaRunOptions => ({
    ...r,
    subBatchBytes: r.subBatchBytes ?? run.subBatchBytes,
  });
  const encodeManyWithInfo = (f: Tensor[], o: EncodeOptions | EncodeOptions[], r?: CudaRunOptions) =>
    inTurn(() => cudaFastEncodeMany(lib, registry, f, o, runOf(r)));
  const decodeRun: CudaDecodeRunOptions = { subBatchBytes: opts.decodeSubBatchBytes };
  const decodeManyWithInfo = (s: Uint8Array[], l?: DecodeLimits, r: CudaDecodeRunOptions = decodeRun) =>
    inTurn(() => cudaFastDecodeMany(lib, s, l, undefined, r));
  const decodeManyIntoWithInfo = (
    s: Uint8Array[],
    outs: Float32Array[],
    l?: DecodeLimits,
    r: CudaDecodeRunOptions = decodeRun,
  ) => inTurn(() => cudaFastDecodeMany(lib, s, l, { outs, registry }, r));
  return {
    device: lib.device,
    encodeManyWithInfo,
    encodeManySettled: async (f, o) => (await encodeManyWithInfo(f, o)).results,
    encodeMany: async (f, o) => firstRejection((await encodeManyWithInfo(f, o)).results),
    encodeManyIntoWithInfo: (f, o, out, r) =>
      inTurn(() => cudaFastEncodeMany(lib, registry, f, o, runOf(r), out)),
    decodeManyWithInfo,
    decodeMany: async (s, l) => firstRejection((await decodeManyWithInfo(s, l)).results),
    decodeManyIntoWithInfo,
    decodeManyInto: async (s, outs, l) => firstRejection((await decodeManyIntoWithInfo(s, outs, l)).results),
    memory: () => ({
      registeredBytes: registry.registeredBytes,
      registerFailures: registry.failures,
    }),
  };
}
