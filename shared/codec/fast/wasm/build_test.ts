import { assertEquals } from "@std/assert";
import { FAST_KERNELS_CLANG } from "./fast_kernels_wasm.ts";

const root = new URL("../../../../", import.meta.url);

/** `clang --version`'s first line, or null where clang is not on PATH. */
async function clangVersion(): Promise<string | null> {
  try {
    const out = await new Deno.Command("clang", { args: ["--version"], stdout: "piped", stderr: "null" })
      .output();
    return out.success ? new TextDecoder().decode(out.stdout).split("\n")[0].trim() : null;
  } catch {
    return null;
  }
}

Deno.test("fast_kernels_wasm.ts is the build of fast_kernels.c (infra/wasm/build.sh)", async () => {
  const version = await clangVersion();
  if (version === null) {
    console.warn("skipped: clang is not on PATH, so the committed module cannot be rebuilt here");
    return;
  }
  if (version !== FAST_KERNELS_CLANG) {
    console.warn(`skipped: the module was built with ${FAST_KERNELS_CLANG}, this is ${version}`);
    return;
  }
  const out = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    const build = await new Deno.Command("bash", {
      args: [new URL("infra/wasm/build.sh", root).pathname, out],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(build.success, true, new TextDecoder().decode(build.stderr));
    const committed = await Deno.readTextFile(new URL("fast_kernels_wasm.ts", import.meta.url));
    const fresh = await Deno.readTextFile(out);
    assertEquals(fresh === committed, true, "fast_kernels_wasm.ts is stale: run infra/wasm/build.sh");
  } finally {
    await Deno.remove(out);
  }
});
