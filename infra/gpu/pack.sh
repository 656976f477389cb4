#!/usr/bin/env bash
# Packs what infra/gpu/bench_all.sh needs on a GPU host with no network into .gpu/ (git-ignored):
#   .gpu/deno.xz, .gpu/node_modules.txz, .gpu/gl/*.deb   from ../shared/gpu/pack.sh (Deno binary,
#                                                        linux-x64 node_modules, Vulkan/EGL loaders)
#   .gpu/bin/nats-server.xz                              Debian's nats-server, for the launcher
#   .gpu/fixtures.txz                                    ../shared/models/stories260K, for the GPU tests
#   .gpu/vulkan/                                         the GPU-select layer (KVRELAY_GPU), built here
# Run from anywhere after the project's own install step (`npm start` or `npm test` once), then carry
# .gpu beside the working tree to the host and run `bash infra/gpu/bench_all.sh` there.
#
# This is a dev/bench tool: packing calls the workspace's ../shared/gpu/pack.sh, which sits beside the
# checkout and is not part of the product. Unpacking must work where only the checkout and .gpu/
# travel (../shared is not there), so infra/gpu/unpack.sh is our own copy of that logic, extended
# (nats-server, loaders only when missing, NVIDIA ICD search).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
shared_pack=$root/../shared/gpu/pack.sh
[ -f "$shared_pack" ] || { echo "pack.sh: $shared_pack not found (it sits beside the checkout)" >&2; exit 1; }
[ -d node_modules/.deno ] || { echo "pack.sh: no node_modules; run the project's install step first" >&2; exit 1; }
# The Deno the project installs for itself, when none is on PATH.
command -v deno >/dev/null || export PATH=$root/.tools/node_modules/.bin:$PATH
mkdir -p .gpu

# Pack from a hard-linked snapshot of node_modules: every deno run touches node_modules/.deno, and
# tar stops with "file changed as we read it" when that happens during the pack.
snap=$(mktemp -d "${TMPDIR:-/tmp}/kvrelay-pack.XXXXXX")
trap 'rm -rf "$snap"' EXIT
cp -al node_modules "$snap/node_modules" 2>/dev/null || cp -a node_modules "$snap/node_modules"
cp deno.lock "$snap/"
(cd "$snap" && bash "$shared_pack" "$root/.gpu")

# Shrink to leave room under the 64 MiB travel limit (the checkout alone is ~16 MiB, mostly the
# embedded model): Deno at xz -9e (~1 MiB less, ~90 s), node_modules without source maps and
# markdown (~1 MiB less). Same contents otherwise, so unpacking is unchanged.
# Packages only the tests, plots and SDK checks load (playwright, vega and its d3 family, resvg, the
# openai SDK): nothing on a GPU host imports them, and with them the pack would not fit.
dev_only=('playwright-core@*' 'openai@*' 'vega*' 'd3-*' '@resvg+*' '@types+*' 'topojson-client@*'
  'delaunator@*' 'robust-predicates@*' 'internmap@*' 'json-stringify-pretty-compact@*' 'yargs*' 'cliui@*'
  'rw@*' 'iconv-lite@*' 'safer-buffer@*' 'commander@*' 'bintrees@*/node_modules/bintrees/test')
echo "recompressing (xz -9e, about 2 minutes)"
deno_bin=$(readlink -f "$(command -v deno)")
xz -9e -T1 -c "$deno_bin" > .gpu/deno.xz.tmp && mv .gpu/deno.xz.tmp .gpu/deno.xz
(cd "$snap" && XZ_OPT=-9e tar -cJf "$root/.gpu/node_modules.txz.tmp" \
  --exclude='*/bin/napi-v*/darwin' --exclude='*/bin/napi-v*/win32' \
  --exclude='*/bin/napi-v*/linux/arm64' --exclude='*/@deno/linux-x64-glibc' \
  --exclude='*/@deno+linux-x64-glibc*' --exclude='*.map' --exclude='*.md' --exclude='*.d.ts' \
  "${dev_only[@]/#/--exclude=*/.deno/}" node_modules)
mv .gpu/node_modules.txz.tmp .gpu/node_modules.txz

# Test fixtures from ../shared, which does not travel: the stories260K checkpoint the model's
# GPU equivalence tests compare on (~1 MiB). The real-KV-sample codec test's .npy files (~1 MiB
# more) are left out for room; that one test then fails for want of them on the host.
if [ -f "$root/../shared/models/stories260K/stories260K.bin" ]; then
  tar -cJf .gpu/fixtures.txz -C "$root/../shared" models/stories260K
fi

# The Vulkan layer behind KVRELAY_GPU (two services, two GPUs): built here, where the Vulkan
# headers can be had; unpack.sh puts it where the services look (.vulkan/).
bash "$root/infra/gpu/build_gpu_select.sh" .gpu/vulkan

nats=$(command -v nats-server || true)
[ -n "$nats" ] || nats=/usr/sbin/nats-server
[ -x "$nats" ] || { echo "pack.sh: no nats-server (apt-get install nats-server)" >&2; exit 1; }
mkdir -p .gpu/bin
rm -f .gpu/bin/nats-server
xz -T0 -6 -c "$(readlink -f "$nats")" > .gpu/bin/nats-server.xz
echo "nats-server: $nats ($("$nats" --version 2>&1 | head -1))"

# The working tree and carried paths travel together under a 64 MiB limit.
size=$(du -sb .gpu | cut -f1)
tree=$(git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo ".gpu: $(mib "$size"); working tree: $(mib "$tree"); together: $(mib $((size + tree)))"
if [ "$size" -gt $((50 * 1048576)) ] || [ $((size + tree)) -gt $((62 * 1048576)) ]; then
  echo "pack.sh: too large to travel (limit: 64 MiB together)" >&2
  exit 1
fi
