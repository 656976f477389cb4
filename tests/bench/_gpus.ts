/**
 * What nvidia-smi says about the GPUs and the processes on them, for benches that must show where
 * a service ran. Null where there is no nvidia-smi (or it fails), as on a machine without a GPU.
 * @module
 */

export interface GpuMemory {
  index: number;
  name: string;
  busId: string;
  usedMiB: number;
}

export interface GpuProcess {
  pid: number;
  busId: string;
  usedMiB: number;
}

async function query(args: string[]): Promise<string[][] | null> {
  try {
    const out = await new Deno.Command("nvidia-smi", { args, stdout: "piped", stderr: "null" }).output();
    if (!out.success) return null;
    return new TextDecoder().decode(out.stdout).trim().split("\n").filter(Boolean)
      .map((l) => l.split(",").map((f) => f.trim()));
  } catch {
    return null;
  }
}

/** Memory in use on each GPU, in nvidia-smi's order (its index is KVRELAY_GPU's). */
export async function gpuMemory(): Promise<GpuMemory[] | null> {
  const rows = await query([
    "--query-gpu=index,name,pci.bus_id,memory.used",
    "--format=csv,noheader,nounits",
  ]);
  return rows?.map(([index, name, busId, used]) => ({
    index: Number(index),
    name,
    busId,
    usedMiB: Number(used),
  })) ?? null;
}

/** The processes holding GPU memory, with the GPU each is on. */
export async function gpuProcesses(): Promise<GpuProcess[] | null> {
  const rows = await query([
    "--query-compute-apps=pid,gpu_bus_id,used_memory",
    "--format=csv,noheader,nounits",
  ]);
  return rows?.map(([pid, busId, used]) => ({ pid: Number(pid), busId, usedMiB: Number(used) })) ?? null;
}
