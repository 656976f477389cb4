/**
 * What the benches record about the machine they ran on, and the label that names their
 * results file (`tests/bench/results/<bench>_<label>.json`).
 * @module
 */
import type { AdapterProbe } from "../../shared/model/mod.ts";

/** The CPU's model name from /proc/cpuinfo, or the architecture where there is none. */
export function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(Deno.readTextFileSync("/proc/cpuinfo"));
    return m ? m[1].trim() : Deno.build.arch;
  } catch {
    return Deno.build.arch;
  }
}

/** Lower-case words joined by `-`, vendor marks and filler dropped, at most 40 characters. */
function slug(s: string): string {
  return s.toLowerCase().replace(/\(r\)|\(tm\)|processor|cpu|\d+-core/g, "").replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "").slice(0, 40);
}

/**
 * The default results label: the WebGPU adapter when `adapter` found a hardware one
 * (`nvidia-h200`), else the CPU model and core count (`amd-epyc-2c`).
 *
 * @example
 * ```ts
 * const label = machineLabel(await probeAdapter()); // "amd-epyc-2c" on a 2-core EPYC
 * ```
 */
export function machineLabel(adapter?: AdapterProbe): string {
  if (adapter?.found && !adapter.software) return slug(adapter.description!);
  return `${slug(cpuModel())}-${navigator.hardwareConcurrency}c`;
}

/**
 * CPU, cores, memory, OS and Deno version, as the benches write them into their JSON; with
 * `adapter`, also the WebGPU adapter it found (null for none) and whether it is software.
 *
 * @example
 * ```ts
 * console.error(`machine: ${JSON.stringify(machineInfo(await probeAdapter()))}`);
 * ```
 */
export function machineInfo(adapter?: AdapterProbe) {
  return {
    cpu: cpuModel(),
    cores: navigator.hardwareConcurrency,
    memoryGiB: Math.round(Deno.systemMemoryInfo().total / 2 ** 30),
    os: `${Deno.build.os} ${Deno.osRelease()}`,
    deno: Deno.version.deno,
    ...(adapter && {
      webgpuAdapter: adapter.found ? adapter.description : null,
      webgpuAdapterSoftware: adapter.found ? adapter.software : null,
    }),
  };
}
