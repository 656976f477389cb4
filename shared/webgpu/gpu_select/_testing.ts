/**
 * Test-only: whether this machine can build the GPU-select layer (a C compiler and the Vulkan
 * headers, Debian's libvulkan-dev). Tests that need the layer are ignored where it cannot.
 * @module
 */
export const canBuildGpuSelectLayer: boolean = (() => {
  try {
    Deno.statSync("/usr/include/vulkan/vk_layer.h");
    return new Deno.Command("cc", { args: ["--version"], stdout: "null", stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
})();
