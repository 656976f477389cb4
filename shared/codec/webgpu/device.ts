/**
 * WebGPU device acquisition with a deadline. Under Deno a failing adapter can leave
 * `requestAdapter()` or `requestDevice()` neither resolved nor rejected, so both are raced
 * against `AbortSignal.timeout`. Reports whether the adapter is a real GPU or a software
 * rasterizer (Mesa llvmpipe / lavapipe, SwiftShader, WARP): `auto` device selection only
 * takes a real GPU. Knows nothing about the codec.
 * @module
 */
import { ensureRuntimeDir } from "../../webgpu/runtime_dir.ts";
import { adapterDescription, isSoftwareAdapter } from "../../webgpu/adapter.ts";

/** A device and what it runs on. */
export interface GpuHandle {
  device: GPUDevice;
  /** Adapter vendor, architecture and description, for logs and benchmark results. */
  adapter: { vendor: string; architecture: string; device: string; description: string };
  /** True for a software adapter (isFallbackAdapter, or a known CPU rasterizer by name). */
  software: boolean;
  /** Whether the device was created with 'timestamp-query'. */
  timestamps: boolean;
}

/** No adapter, or one that did not answer in time. */
export class GpuUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "GpuUnavailableError";
  }
}

/** Options of {@link acquireGpu}. */
export interface AcquireOptions {
  /** Deadline for adapter and device together, in ms (default 10 000). */
  timeoutMs?: number;
  /** Refuse a software adapter (default false). */
  requireHardware?: boolean;
}

function race<T>(p: Promise<T>, signal: AbortSignal, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new GpuUnavailableError(`${what} did not answer in time`));
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      resolve,
      (e) => reject(new GpuUnavailableError(`${what} failed: ${e?.message ?? e}`, { cause: e })),
    )
      .finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/**
 * Requests a high-performance adapter and a device with the adapter's largest storage
 * limits, within `timeoutMs`. Throws {@link GpuUnavailableError} when WebGPU is missing, no
 * adapter answers, or (with `requireHardware`) the adapter is a software one.
 *
 * @example
 * ```ts ignore
 * import { acquireGpu } from "./device.ts";
 * const gpu = await acquireGpu({ timeoutMs: 5000 });
 * console.log(gpu.adapter.description, gpu.software);
 * gpu.device.destroy();
 * ```
 */
export async function acquireGpu(opts: AcquireOptions = {}): Promise<GpuHandle> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) throw new GpuUnavailableError("WebGPU (navigator.gpu) is not available in this runtime");
  ensureRuntimeDir();
  const signal = AbortSignal.timeout(opts.timeoutMs ?? 10_000);
  const adapter = await race(
    gpu.requestAdapter({ powerPreference: "high-performance" }),
    signal,
    "requestAdapter",
  );
  if (!adapter) throw new GpuUnavailableError("no WebGPU adapter");
  const info = adapter.info;
  const description = adapterDescription(info);
  const fallback = (info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter ||
    (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter;
  const software = isSoftwareAdapter({ description, isFallbackAdapter: fallback === true });
  if (software && opts.requireHardware) {
    throw new GpuUnavailableError(`WebGPU adapter '${description}' is a software rasterizer`);
  }
  const timestamps = adapter.features.has("timestamp-query");
  const L = adapter.limits;
  const device = await race(
    adapter.requestDevice({
      requiredFeatures: timestamps ? ["timestamp-query"] : [],
      requiredLimits: {
        maxStorageBufferBindingSize: L.maxStorageBufferBindingSize,
        maxBufferSize: L.maxBufferSize,
        maxStorageBuffersPerShaderStage: Math.min(L.maxStorageBuffersPerShaderStage, 10),
        maxComputeWorkgroupStorageSize: L.maxComputeWorkgroupStorageSize,
      },
    }),
    signal,
    "requestDevice",
  );
  return {
    device,
    adapter: { vendor: info.vendor, architecture: info.architecture, device: info.device, description },
    software,
    timestamps,
  };
}
