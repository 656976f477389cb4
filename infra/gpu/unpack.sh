# shellcheck shell=bash
# Source from the project root on the GPU host:  source infra/gpu/unpack.sh [PACKDIR=.gpu]
# Sets up what infra/gpu/pack.sh packed, without network: Vulkan/EGL loaders (only when the host
# lacks them), node_modules (only when absent), deno and nats-server on PATH (in /tmp/kvrelay-bin),
# and Vulkan/EGL pointed at the NVIDIA driver. Our copy of ../shared/gpu/unpack.sh, which does not
# travel to the host; it also works as a non-root user (loaders then go to LD_LIBRARY_PATH) and
# writes an NVIDIA ICD file when the driver ships none. Returns non-zero when deno is unusable.
_kv_pack=${1:-.gpu}
_kv_bin=/tmp/kvrelay-bin
mkdir -p "$_kv_bin"
echo "[unpack] pack: $_kv_pack ($(du -sh "$_kv_pack" 2>/dev/null | cut -f1))"

# Loaders: Deno's WebGPU and onnxruntime's Dawn open libvulkan.so.1 at run time.
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 ' || ! ldconfig -p 2>/dev/null | grep -q 'libEGL\.so\.1 '; then
  if [ "$(id -u)" = 0 ]; then
    for f in "$_kv_pack"/gl/*.deb; do [ -f "$f" ] && dpkg -x "$f" /; done
    ldconfig
    echo "[unpack] installed the Vulkan/EGL loaders from $_kv_pack/gl"
  else
    mkdir -p /tmp/kvrelay-gl
    for f in "$_kv_pack"/gl/*.deb; do [ -f "$f" ] && dpkg -x "$f" /tmp/kvrelay-gl; done
    export LD_LIBRARY_PATH=/tmp/kvrelay-gl/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    echo "[unpack] Vulkan/EGL loaders in /tmp/kvrelay-gl (not root)"
  fi
fi

if [ -f "$_kv_pack/deno.xz" ]; then
  xz -dc "$_kv_pack/deno.xz" > "$_kv_bin/deno.tmp" && chmod +x "$_kv_bin/deno.tmp" && mv "$_kv_bin/deno.tmp" "$_kv_bin/deno"
fi
if [ -f "$_kv_pack/bin/nats-server.xz" ] && ! command -v nats-server >/dev/null; then
  xz -dc "$_kv_pack/bin/nats-server.xz" > "$_kv_bin/nats-server" && chmod +x "$_kv_bin/nats-server"
fi
export PATH=$_kv_bin:$PATH
if [ ! -d node_modules/.deno ] && [ -f "$_kv_pack/node_modules.txz" ]; then
  tar -xJf "$_kv_pack/node_modules.txz" && echo "[unpack] restored node_modules"
fi
# The pack leaves out the packages only tests and plots load (pack.sh), so Deno must take
# node_modules as it is: with `auto` it would try to fetch the missing ones, and there is no
# network. This host's copy of deno.json is a throwaway.
if [ -f deno.json ] && grep -q '"nodeModulesDir": "auto"' deno.json; then
  sed -i 's/"nodeModulesDir": "auto"/"nodeModulesDir": "manual"/' deno.json && echo "[unpack] node_modules used as packed (manual)"
fi

# Test fixtures the tests read from ../shared (tests/_harness/paths.ts), which does not travel.
if [ -f "$_kv_pack/fixtures.txz" ] && [ ! -f ../shared/models/stories260K/stories260K.bin ]; then
  mkdir -p ../shared && tar -xJf "$_kv_pack/fixtures.txz" -C ../shared && echo "[unpack] fixtures into ../shared"
fi

# The GPU-select layer (KVRELAY_GPU), where shared/webgpu/gpu_select/select.ts looks for it.
if [ -f "$_kv_pack/vulkan/libkvrelay_gpu_select.so" ] && [ ! -f .vulkan/libkvrelay_gpu_select.so ]; then
  mkdir -p .vulkan && cp "$_kv_pack"/vulkan/* .vulkan/ && echo "[unpack] GPU-select layer in .vulkan"
fi

# The NVIDIA Vulkan ICD (and EGL vendor file): the driver's mount, the usual places, else write one.
for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json \
  /usr/share/vulkan/icd.d/nvidia_icd.json; do
  [ -f "$icd" ] && export VK_DRIVER_FILES=$icd && break
done
if [ -z "${VK_DRIVER_FILES:-}" ] && ldconfig -p 2>/dev/null | grep -q 'libGLX_nvidia\.so\.0 '; then
  mkdir -p /tmp/kvrelay-gl
  printf '{"file_format_version":"1.0.0","ICD":{"library_path":"libGLX_nvidia.so.0","api_version":"1.3.0"}}\n' \
    > /tmp/kvrelay-gl/nvidia_icd.json
  export VK_DRIVER_FILES=/tmp/kvrelay-gl/nvidia_icd.json
fi
for egl in /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json /usr/share/glvnd/egl_vendor.d/10_nvidia.json; do
  [ -f "$egl" ] && export __EGL_VENDOR_LIBRARY_FILENAMES=$egl && break
done
export VK_ICD_FILENAMES=${VK_DRIVER_FILES:-${VK_ICD_FILENAMES:-}}
[ -n "$VK_ICD_FILENAMES" ] || unset VK_ICD_FILENAMES
echo "[unpack] VK_DRIVER_FILES=${VK_DRIVER_FILES:-(none: no NVIDIA ICD found)}"
export DENO_NO_UPDATE_CHECK=1 DENO_NO_PROMPT=1
echo "[unpack] deno: $(command -v deno || echo missing); nats-server: $(command -v nats-server || echo missing)"
unset _kv_pack _kv_bin
deno --version >/dev/null 2>&1
