#!/usr/bin/env bash
# One entry point for a fresh Debian machine with Node.js/npm: installs Deno (from npm,
# into .tools/), Debian's nats-server when missing (and, for `test`, chromium), the project's npm dependencies
# (pinned by deno.lock), then runs `deno task <task> [args...]`.
#   bash infra/bootstrap.sh start      # the whole system (what `npm start` runs)
#   bash infra/bootstrap.sh test       # fmt, lint, type check and every test (`npm test`)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
DENO_VERSION=2.9.6
task=${1:-start}
shift || true

say() { echo "[kvrelay setup] $*" >&2; }

# --- Deno, from the npm registry -------------------------------------------------------
deno_bin="$root/.tools/node_modules/.bin/deno"
if ! [ -x "$deno_bin" ] || ! "$deno_bin" --version 2>/dev/null | grep -q "deno $DENO_VERSION"; then
  say "installing deno@$DENO_VERSION from npm into .tools/"
  mkdir -p .tools
  [ -f .tools/package.json ] || echo '{"private":true}' > .tools/package.json
  npm install --prefix .tools --no-audit --no-fund --loglevel=error "deno@$DENO_VERSION" >&2
fi
export PATH="$root/.tools/node_modules/.bin:$PATH"
export DENO_NO_UPDATE_CHECK=1

# --- nats-server, from Debian --------------------------------------------------------
if [ -z "${NATS_URL:-}" ] && ! command -v nats-server >/dev/null 2>&1 && ! [ -x /usr/sbin/nats-server ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian's nats-server"
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >&2
  else
    say "nats-server is missing: run 'sudo apt-get install nats-server' (Debian package), or set NATS_URL to an existing NATS with JetStream"
    exit 1
  fi
fi

# --- Chromium, from Debian, for the dashboard's browser test (tests/e2e/dashboard_browser_test.ts) ---
# Optional: without it that one test is skipped and says why.
if [ "$task" = test ] && ! [ -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian's chromium (the dashboard's browser test)"
    { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2; } ||
      say "could not install chromium: the dashboard's browser test will be skipped"
  else
    say "optional: 'sudo apt-get install chromium' runs the dashboard's browser test (skipped without it)"
  fi
fi

# --- WebGPU software adapter (Mesa's lavapipe/llvmpipe), from Debian ----------------------
# Optional: without it WebGPU finds no adapter and the CPU runs everything (device auto).
# With it the WebGPU code paths can be tested on a machine without a GPU; the Vulkan headers
# (libvulkan-dev) let the tests build the GPU-select layer (KVRELAY_GPU) and run it on lavapipe.
if command -v dpkg-query >/dev/null 2>&1; then
  missing=()
  for pkg in mesa-vulkan-drivers libegl-mesa0 libvulkan-dev; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      say "installing Debian's ${missing[*]} (WebGPU software adapter, Vulkan headers)"
      { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2; } ||
        say "could not install ${missing[*]}: WebGPU will find no software adapter (the CPU path is unaffected)"
    else
      say "optional: 'sudo apt-get install ${missing[*]}' gives WebGPU a software adapter (the CPU path works without)"
    fi
  fi
fi

# --- a newer lavapipe for onnxruntime's WebGPU provider --------------------------------------
# onnxruntime's bundled Dawn refuses bookworm's lavapipe (Mesa 22.3 lacks Vulkan features it
# requires) but runs on Mesa 25's, so the model's WebGPU-vs-CPU tests can run without a GPU. The
# driver is unpacked into .tools/lavapipe (nothing is installed system-wide) and used only where
# no GPU and no Vulkan driver choice are present.
lvp_dir="$root/.tools/lavapipe"
if ! [ -f "$lvp_dir/lvp.json" ] && command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1; then
  say "fetching Mesa's lavapipe from bookworm-backports into .tools/lavapipe (WebGPU software adapter for onnxruntime)"
  tmp=$(mktemp -d) && chmod 755 "$tmp" && mkdir -p "$tmp/lists/partial" "$lvp_dir/root"
  echo "deb http://deb.debian.org/debian bookworm-backports main" > "$tmp/sources.list"
  o=(-o "Dir::Etc::SourceList=$tmp/sources.list" -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$tmp/lists")
  if apt-get "${o[@]}" update >/dev/null 2>&1 &&
    (cd "$tmp" && apt-get "${o[@]}" download mesa-vulkan-drivers/bookworm-backports >/dev/null 2>&1) &&
    dpkg -x "$tmp"/mesa-vulkan-drivers_*.deb "$lvp_dir/root"; then
    lib="$lvp_dir/root/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so"
    find "$lvp_dir/root" -name 'libvulkan_*.so' ! -name libvulkan_lvp.so -delete # other vendors' drivers
    sed "s#\"library_path\": *\"[^\"]*\"#\"library_path\": \"$lib\"#" \
      "$lvp_dir"/root/usr/share/vulkan/icd.d/lvp_icd*.json > "$lvp_dir/lvp.json"
  else
    say "could not fetch lavapipe from bookworm-backports: onnxruntime's WebGPU tests will be skipped"
  fi
  rm -rf "$tmp"
fi
if [ -f "$lvp_dir/lvp.json" ] && [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ] &&
  ! command -v nvidia-smi >/dev/null 2>&1; then
  export VK_DRIVER_FILES="$lvp_dir/lvp.json" VK_ICD_FILENAMES="$lvp_dir/lvp.json"
fi

# --- npm dependencies, pinned by deno.lock (build scripts stay off: ORT's would fetch CUDA)
if ! deno install --frozen --quiet >&2; then
  say "deno install failed (the npm registry must be reachable on first run)"
  exit 1
fi

exec deno task "$task" "$@"
