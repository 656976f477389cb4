/**
 * The fast codec's CUDA library (libkvrelay_cuda.so, built from ./*.cu by infra/cuda/build.sh)
 * through `Deno.dlopen`: its symbols (C ABI in ./kvrelay_cuda.h), found at `KVRELAY_CUDA_LIB`
 * (read by shared/config) or `<repo>/.cuda/libkvrelay_cuda.so`. A missing library, a missing
 * CUDA driver or no device is a `CudaUnavailableError` saying which.
 * @module
 */
import { GpuUnavailableError } from "../webgpu/device.ts";

/** No CUDA library, driver or device: the message says which and how to get it. */
export class CudaUnavailableError extends GpuUnavailableError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CudaUnavailableError";
  }
}

/** The library's symbols as Deno.dlopen declares them (each the C prototype in ./kvrelay_cuda.h). */
export const SYMBOLS = {
  kvr_cuda_init: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  kvr_cuda_device_name: { parameters: ["buffer", "u32"], result: "i32" },
  kvr_cuda_host_register: { parameters: ["pointer", "u64", "buffer", "u32"], result: "i32" },
  kvr_cuda_host_unregister: { parameters: ["pointer"], result: "i32" },
  kvr_cuda_host_alloc: { parameters: ["u64"], result: "pointer" },
  kvr_cuda_host_free: { parameters: ["pointer"], result: "void" },
  kvr_fast_encode: {
    parameters: ["buffer", "u32", "buffer", "buffer", "u32", "buffer", "u64", "buffer", "buffer", "u32"],
    result: "i32",
    nonblocking: true,
  },
  kvr_fast_encode_collect: {
    parameters: ["buffer", "u64", "buffer", "u32", "buffer", "buffer", "u32"],
    result: "i32",
    nonblocking: true,
  },
  kvr_fast_decode: {
    parameters: ["buffer", "u32", "buffer", "u64", "u64", "buffer", "buffer", "buffer", "u32"],
    result: "i32",
    nonblocking: true,
  },
} as const;

export type CudaSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** Words of the C ABI's tables (kvrelay_cuda.h `EncIn`, `EncOut`, `DecIn`, `Timing`). */
export const EI = {
  ptr: 0,
  rows: 1,
  cols: 2,
  bound: 3,
  mode: 4,
  pred: 5,
  reserve: 6,
  dtype: 7,
  words: 8,
} as const;
/** Values of `EI.dtype` (kvrelay_cuda.h `EncDtype`): f32 values, or f16 bits widened on the device. */
export const ED = { f32: 0, f16: 1 } as const;
export const EO = {
  status: 0,
  bodyAt: 1,
  bodyLen: 2,
  eb: 3,
  step: 4,
  pred: 5,
  outliers: 6,
  outlierBits: 7,
  exceptions: 8,
  payloadWords: 9,
  words: 10,
} as const;
export const DI = {
  ptr: 0,
  len: 1,
  rows: 2,
  cols: 3,
  step: 4,
  delta: 5,
  outlierBits: 6,
  outliersAt: 7,
  payloadAt: 8,
  outliers: 9,
  payloadWords: 10,
  digest: 11,
  out: 12,
  direct: 13,
  words: 14,
} as const;
export const TM = {
  h2dMs: 0,
  kernelMs: 1,
  d2hMs: 2,
  totalMs: 3,
  h2dBytes: 4,
  d2hBytes: 5,
  batches: 6,
  directBytes: 7,
  words: 8,
} as const;

/** The loaded library and its device. */
export interface CudaLibrary {
  readonly symbols: CudaSymbols;
  /** The device's name, compute capability and memory. */
  readonly device: string;
  /** The CUDA device index it runs on (KVRELAY_CUDA_DEVICE). */
  readonly deviceIndex: number;
  readonly path: string;
}

const ERR_CAP = 512;
/** A C call's message buffer and its text. */
export function errBuf(): Uint8Array<ArrayBuffer> {
  return new Uint8Array(ERR_CAP);
}
export function errText(b: Uint8Array): string {
  const end = b.indexOf(0);
  return new TextDecoder().decode(b.subarray(0, end < 0 ? b.length : end));
}

/** Where the library is looked for when `KVRELAY_CUDA_LIB` is unset. */
export const DEFAULT_CUDA_LIB = new URL("../../../.cuda/libkvrelay_cuda.so", import.meta.url).pathname;

/** Libraries opened so far, by path: each once per process. */
const loaded = new Map<string, CudaLibrary>();

/**
 * Opens the library (once per process and path) and initialises CUDA device `device` (one device
 * per process: asking for another one afterwards is a `CudaUnavailableError`).
 *
 * @example
 * ```ts ignore
 * import { loadCudaLibrary } from "./library.ts";
 * const lib = loadCudaLibrary();
 * console.log(lib.device); // "NVIDIA H200 (sm_90, 140 GiB)"
 * ```
 */
export function loadCudaLibrary(path = DEFAULT_CUDA_LIB, device = 0): CudaLibrary {
  const had = loaded.get(path);
  if (had) {
    if (had.deviceIndex !== device) {
      throw new CudaUnavailableError(
        `this process already uses CUDA device ${had.deviceIndex}, not ${device}`,
      );
    }
    return had;
  }
  let dl: Deno.DynamicLibrary<typeof SYMBOLS>;
  try {
    dl = Deno.dlopen(path, SYMBOLS);
  } catch (err) {
    throw new CudaUnavailableError(
      `the CUDA codec library ${path} does not load (${
        (err as Error).message
      }); build it with infra/cuda/build.sh on a host with nvcc`,
      { cause: err },
    );
  }
  const err = errBuf();
  if (dl.symbols.kvr_cuda_init(device, err, ERR_CAP) !== 0) {
    dl.close();
    throw new CudaUnavailableError(`no CUDA device: ${errText(err)}`);
  }
  const name = new Uint8Array(256);
  dl.symbols.kvr_cuda_device_name(name, name.length);
  const lib = { symbols: dl.symbols, device: errText(name), deviceIndex: device, path };
  loaded.set(path, lib);
  return lib;
}
