/**
 * adapters.ts in a process pinned the way a service pins itself (KVRELAY_GPU through selectGpu,
 * the layer in .vulkan/): on a GPU host, `KVRELAY_GPU=1 deno run -A --cached-only THIS` shows
 * which adapter each WebGPU runtime gets for GPU 1.
 */
import { loadConfig } from "../../../config/mod.ts";
import { selectGpu } from "../select.ts";

selectGpu(loadConfig().gpu);
await import("./adapters.ts");
