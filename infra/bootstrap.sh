#!/usr/bin/env bash
# One entry point for a fresh Debian machine with Node.js/npm: installs Deno (from npm,
# into .tools/), Debian's nats-server when missing, the project's npm dependencies
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

# --- WebGPU software adapter (Mesa's lavapipe/llvmpipe), from Debian ----------------------
# Optional: without it WebGPU finds no adapter and the CPU runs everything (device auto).
# With it the WebGPU code paths can be tested on a machine without a GPU.
if command -v dpkg-query >/dev/null 2>&1; then
  missing=()
  for pkg in mesa-vulkan-drivers libegl-mesa0; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      say "installing Debian's ${missing[*]} (WebGPU software adapter)"
      { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2; } ||
        say "could not install ${missing[*]}: WebGPU will find no software adapter (the CPU path is unaffected)"
    else
      say "optional: 'sudo apt-get install ${missing[*]}' gives WebGPU a software adapter (the CPU path works without)"
    fi
  fi
fi

# --- npm dependencies, pinned by deno.lock (build scripts stay off: ORT's would fetch CUDA)
if ! deno install --frozen --quiet >&2; then
  say "deno install failed (the npm registry must be reachable on first run)"
  exit 1
fi

exec deno task "$task" "$@"
