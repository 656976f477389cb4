/**
 * Pins a process to one GPU (KVRELAY_GPU), the way CUDA_VISIBLE_DEVICES pins a CUDA program:
 * WebGPU (onnxruntime's Dawn for the model, Deno's wgpu for the codec) through our Vulkan layer
 * (gpu_select_layer.c), the CUDA codec through CUDA_VISIBLE_DEVICES. Both count NVIDIA's GPUs in
 * PCI address order, as nvidia-smi does, so `KVRELAY_GPU=1` is nvidia-smi's GPU 1 for all three
 * (the layer counts another vendor's GPUs after NVIDIA's). Only the services apply it (runService).
 *
 * The variables are set in the process itself before any GPU is touched: the Vulkan loader and
 * CUDA read them when the first instance or context is made, so a service started by hand, by
 * systemd or by `npm start` is pinned the same way.
 * @module
 */
import { badRequest } from "../../errors.ts";

export const GPU_SELECT_LAYER = "VK_LAYER_KVRELAY_gpu_select";
export const GPU_SELECT_LIBRARY = "libkvrelay_gpu_select.so";
export const GPU_SELECT_MANIFEST = "kvrelay_gpu_select.json";

/** Where infra/gpu/build_gpu_select.sh puts the layer by default (git-ignored). */
export const DEFAULT_GPU_SELECT_DIR = new URL("../../../.vulkan/", import.meta.url).pathname;

/**
 * The variables that pin a process to GPU `index`, given its current environment: the layer
 * added to the loader's search path and to the enabled layers, Deno's WebGPU kept to Vulkan (its
 * OpenGL backend would find a GPU the layer never sees), and CUDA's device list. Mesa's
 * device-select layer, where installed, is turned off: it reorders devices itself, and Mesa
 * 22.3's crashes on the empty list our layer gives when `index` names no GPU.
 */
export function gpuSelectEnv(
  index: number,
  layerDir: string,
  env: Record<string, string | undefined>,
): Record<string, string> {
  const join = (first: string, rest: string | undefined) =>
    !rest ? first : rest.split(":").includes(first) ? rest : `${first}:${rest}`;
  return {
    KVRELAY_GPU: String(index),
    VK_ADD_LAYER_PATH: join(layerDir, env.VK_ADD_LAYER_PATH),
    VK_INSTANCE_LAYERS: join(GPU_SELECT_LAYER, env.VK_INSTANCE_LAYERS),
    NODEVICE_SELECT: "1",
    DENO_WEBGPU_BACKEND: "vulkan",
    CUDA_VISIBLE_DEVICES: String(index),
    CUDA_DEVICE_ORDER: "PCI_BUS_ID",
  };
}

/**
 * Pins this process to GPU `index` (nothing when undefined). Refused, naming KVRELAY_GPU: a
 * layer that was not built, and a CUDA_VISIBLE_DEVICES that says otherwise.
 */
export function selectGpu(
  index: number | undefined,
  opts: { layerDir?: string; env?: { get(k: string): string | undefined; set(k: string, v: string): void } } =
    {},
): Record<string, string> | undefined {
  if (index === undefined) return undefined;
  const env = opts.env ?? Deno.env;
  const layerDir = opts.layerDir ?? DEFAULT_GPU_SELECT_DIR;
  for (const file of [GPU_SELECT_LIBRARY, GPU_SELECT_MANIFEST]) {
    try {
      Deno.statSync(`${layerDir}/${file}`);
    } catch {
      throw badRequest(
        `KVRELAY_GPU needs the GPU-select layer, and ${layerDir}/${file} is missing: run bash infra/gpu/build_gpu_select.sh`,
        "KVRELAY_GPU",
      );
    }
  }
  const cuda = env.get("CUDA_VISIBLE_DEVICES");
  if (cuda && cuda !== String(index)) {
    throw badRequest(
      `KVRELAY_GPU=${index} and CUDA_VISIBLE_DEVICES=${cuda} disagree; set one`,
      "KVRELAY_GPU",
    );
  }
  const vars = gpuSelectEnv(index, layerDir, {
    VK_ADD_LAYER_PATH: env.get("VK_ADD_LAYER_PATH"),
    VK_INSTANCE_LAYERS: env.get("VK_INSTANCE_LAYERS"),
  });
  for (const [k, v] of Object.entries(vars)) env.set(k, v);
  return vars;
}
