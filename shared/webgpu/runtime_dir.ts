/**
 * Mesa's Vulkan drivers (behind WebGPU's software and GPU adapters on Linux) print
 * "XDG_RUNTIME_DIR is invalid or not set" when a headless service has no runtime directory.
 * Nothing needs one here, so a process without it gets a private one (mode 0700, removed at
 * exit) before the first adapter is requested, and the noise goes away.
 * @module
 */

let done = false;

/** Gives this process a private `XDG_RUNTIME_DIR` when it has no usable one; once. */
export function ensureRuntimeDir(): void {
  if (done || Deno.build.os !== "linux") return;
  done = true;
  const current = Deno.env.get("XDG_RUNTIME_DIR");
  if (current) {
    try {
      if (Deno.statSync(current).isDirectory) return;
    } catch { /* not there: make one */ }
  }
  try {
    const dir = Deno.makeTempDirSync({ prefix: "kvrelay-xdg-" });
    Deno.chmodSync(dir, 0o700);
    Deno.env.set("XDG_RUNTIME_DIR", dir);
    globalThis.addEventListener("unload", () => {
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch { /* gone */ }
    });
  } catch { /* no temp dir: the drivers only complain */ }
}
