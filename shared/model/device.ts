/**
 * Which device the model runtime uses. `cpu` and `webgpu` are taken as asked; `auto` asks
 * Deno's WebGPU (`navigator.gpu`) for an adapter first and takes the GPU only when one is a
 * real GPU: Mesa's llvmpipe/lavapipe, SwiftShader and any adapter flagged
 * `isFallbackAdapter` count as software. Every WebGPU call is raced against a deadline: a
 * failing adapter can leave its promise pending forever under Deno.
 *
 * It knows nothing about sessions: `Model` builds them and falls back to the CPU when the
 * WebGPU execution provider fails under `auto` (see `model.ts`).
 * @module
 */
import { ensureRuntimeDir } from "../webgpu/runtime_dir.ts";
import type { DeviceChoice } from "../config/mod.ts";
import { KvrelayError } from "../errors.ts";
import { adapterDescription, isSoftwareAdapter } from "../webgpu/adapter.ts";

export { isSoftwareAdapter };

/** A device a model actually runs on. */
export type ModelDevice = "cpu" | "webgpu";

/** What `navigator.gpu.requestAdapter()` reported. */
export interface AdapterProbe {
  /** An adapter was returned. */
  found: boolean;
  /** The adapter's description (e.g. "NVIDIA H200", "llvmpipe (LLVM 15.0.6, 256 bits)"). */
  description?: string;
  /** True for a software rasterizer, whether flagged by WebGPU or recognised by name. */
  software?: boolean;
  /** Why no adapter was found (no navigator.gpu, null adapter, error, timeout). */
  reason?: string;
}

/** Default deadline for asking WebGPU for an adapter. */
export const DEFAULT_PROBE_TIMEOUT_MS = 5_000;

/**
 * Races `p` against `ms` milliseconds; the loser is ignored, and a value that arrives late
 * is handed to `onLate` (e.g. to release a session nobody will use).
 *
 * @example
 * ```ts
 * import { withDeadline } from "./device.ts";
 * const v = await withDeadline(Promise.resolve(1), 1_000, "answer");
 * ```
 */
export async function withDeadline<T>(
  p: Promise<T>,
  ms: number,
  what: string,
  onLate?: (value: T) => void,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timedOut = false;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      reject(new KvrelayError("timeout", `${what} did not finish within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([p, deadline]);
  } finally {
    clearTimeout(timer);
    if (timedOut && onLate) p.then(onLate, () => {});
  }
}

let probed: Promise<AdapterProbe> | undefined;

/**
 * Asks Deno's WebGPU for a high-performance adapter, once per process (the answer is
 * cached); never rejects and never waits longer than `timeoutMs`.
 */
export function probeAdapter(timeoutMs = DEFAULT_PROBE_TIMEOUT_MS): Promise<AdapterProbe> {
  probed ??= probeGpu((globalThis.navigator as Navigator & { gpu?: GPU }).gpu, timeoutMs);
  return probed;
}

/** `probeAdapter` on a given `GPU` object, uncached. */
export async function probeGpu(
  gpu: Pick<GPU, "requestAdapter"> | undefined,
  timeoutMs: number,
): Promise<AdapterProbe> {
  if (!gpu) return { found: false, reason: "this runtime has no navigator.gpu" };
  ensureRuntimeDir();
  try {
    const adapter = await withDeadline(
      gpu.requestAdapter({ powerPreference: "high-performance" }),
      timeoutMs,
      "navigator.gpu.requestAdapter()",
    );
    if (!adapter) return { found: false, reason: "navigator.gpu.requestAdapter() returned no adapter" };
    const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
    const description = adapterDescription(info);
    return { found: true, description, software: isSoftwareAdapter({ ...info, description }) };
  } catch (err) {
    return { found: false, reason: (err as Error).message };
  }
}

let announced = false;

/** Says once per process, on stderr, that `auto` runs the model on the CPU and why. */
export function announceCpuFallback(reason: string): void {
  if (announced) return;
  announced = true;
  console.error(`kvrelay: device auto: ${reason}; the model runs on the CPU`);
}

/**
 * The device to try first for a choice: `cpu` and `webgpu` as given; `auto` → `webgpu`
 * when the probe finds a hardware adapter, else `cpu` with the reason.
 */
export async function pickDevice(
  choice: DeviceChoice,
  opts: { probe?: () => Promise<AdapterProbe> } = {},
): Promise<{ device: ModelDevice; adapter?: AdapterProbe; reason?: string }> {
  if (choice === "cpu") return { device: "cpu" };
  const adapter = await (opts.probe ?? probeAdapter)();
  if (choice === "webgpu") return { device: "webgpu", adapter };
  if (!adapter.found) return { device: "cpu", adapter, reason: `no WebGPU adapter (${adapter.reason})` };
  if (adapter.software) {
    return {
      device: "cpu",
      adapter,
      reason: `WebGPU offers only a software adapter (${adapter.description})`,
    };
  }
  return { device: "webgpu", adapter };
}
