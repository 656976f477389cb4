#!/usr/bin/env bash
# Builds the Vulkan layer that pins a process to one GPU (KVRELAY_GPU;
# shared/webgpu/gpu_select/gpu_select_layer.c) into .vulkan/ at the repository root (git-ignored),
# or OUT_DIR: libkvrelay_gpu_select.so and its manifest kvrelay_gpu_select.json. Needs a C compiler
# and the Vulkan headers (Debian: libvulkan-dev; without them the headers are taken from that
# package's .deb, fetched with apt-get download). No link against libvulkan: the loader loads it.
#   bash infra/gpu/build_gpu_select.sh [OUT_DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="${1:-$ROOT/.vulkan}"
CC="${CC:-cc}"
mkdir -p "$OUT"
include=()
if [ ! -f /usr/include/vulkan/vk_layer.h ]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && apt-get download libvulkan-dev >/dev/null && dpkg -x libvulkan-dev_*.deb root) || {
    echo "build_gpu_select.sh: no Vulkan headers (install libvulkan-dev)" >&2
    exit 1
  }
  include=(-I "$tmp/root/usr/include")
fi
"$CC" -O2 -std=c11 -fPIC -shared -fvisibility=hidden -Wall -Wextra -Werror -pthread "${include[@]}" \
  -o "$OUT/libkvrelay_gpu_select.so" "$ROOT/shared/webgpu/gpu_select/gpu_select_layer.c"
# an explicit layer: a process enables it by name (shared/webgpu/gpu_select/select.ts)
cat >"$OUT/kvrelay_gpu_select.json" <<'JSON'
{
  "file_format_version": "1.1.2",
  "layer": {
    "name": "VK_LAYER_KVRELAY_gpu_select",
    "type": "GLOBAL",
    "library_path": "./libkvrelay_gpu_select.so",
    "api_version": "1.3.0",
    "implementation_version": "1",
    "description": "kvrelay: shows the process only the GPU KVRELAY_GPU names",
    "functions": { "vkNegotiateLoaderLayerInterfaceVersion": "vkNegotiateLoaderLayerInterfaceVersion" }
  }
}
JSON
echo "built $OUT/libkvrelay_gpu_select.so"
