/**
 * What a WebGPU adapter is, decided once for every user (the model runtime's and the KVSort
 * codec's `auto`): a software rasterizer — Mesa's llvmpipe/lavapipe/softpipe, SwiftShader,
 * WARP, or anything WebGPU flags `isFallbackAdapter` — is not a GPU.
 * @module
 */

const SOFTWARE_NAMES = /llvmpipe|lavapipe|softpipe|swiftshader|microsoft basic render|warp|software/i;

/** The adapter's description, or vendor/architecture/device when the runtime gives none. */
export function adapterDescription(
  info: { description?: string; vendor?: string; architecture?: string; device?: string },
): string {
  return info.description || [info.vendor, info.architecture, info.device].filter(Boolean).join(" ");
}

/** True when the adapter is flagged as a fallback or its description names a software rasterizer. */
export function isSoftwareAdapter(info: { description?: string; isFallbackAdapter?: boolean }): boolean {
  return info.isFallbackAdapter === true || SOFTWARE_NAMES.test(info.description ?? "");
}
