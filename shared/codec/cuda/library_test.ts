/**
 * Loading the CUDA library where it is not: a typed error that names the path and how to build it
 * (no GPU or library needed; the codec's behaviour on a device is cuda_test.ts).
 */
import { assertStringIncludes, assertThrows } from "@std/assert";
import { CudaUnavailableError, loadCudaLibrary } from "./library.ts";
import { GpuUnavailableError } from "../webgpu/device.ts";

Deno.test("loadCudaLibrary() names a missing library in a CudaUnavailableError", () => {
  const path = `${Deno.makeTempDirSync()}/libkvrelay_cuda.so`;
  const err = assertThrows(() => loadCudaLibrary(path), CudaUnavailableError);
  assertStringIncludes(err.message, path);
  assertStringIncludes(err.message, "infra/cuda/build.sh");
  if (!(err instanceof GpuUnavailableError)) {
    throw new Error("a CudaUnavailableError is a GpuUnavailableError");
  }
});
