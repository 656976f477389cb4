#!/usr/bin/env bash
# The one command for a GPU host with no network, from the repo root with .gpu/ (infra/gpu/pack.sh)
# carried beside the working tree:
#   bash infra/gpu/bench_all.sh            # OUT=/tmp/out unless set; LABEL=h200; QUICK=1 for a short run
#   STEPS=tests,fastcodec,handoff bash infra/gpu/bench_all.sh   # only the named steps (default: all)
# Steps, each under its own timeout, none able to stop the others, all inside TOTAL_S (default 510 s):
#   setup     infra/gpu/unpack.sh .gpu (deno, nats-server, node_modules if absent, Vulkan loaders, ICD)
#   info      nvidia-smi -L, deno --version, Deno's WebGPU adapter
#   cuda      infra/cuda/build.sh             (the fast codec's CUDA library, into .cuda/)
#   tests     GPU equivalence tests (model on WebGPU vs CPU, kept KV, KVSort WebGPU codec, the fast
#             codec on WebGPU and on CUDA: byte-identical streams, bit-identical values, the bound)
#   model     deno task bench:model           (prefill/decode tokens/s, cpu vs webgpu)
#   codec     deno task bench:codec-gpu       (KVSort GB/s, WebGPU vs CPU)
#   e2e       deno task bench:e2e             (whole requests, devices cpu:cpu then webgpu:webgpu)
#   fastcodec deno task bench:codec-fast-gpu  (the fast format on WebGPU and CUDA: kernels and end to end, GB/s)
#   handoff   deno task bench:handoff         (hand-off time vs fp16 over modelled links, GPU encoder
#             HANDOFF_ENCODER: webgpu unless set; cuda for the fast codec on CUDA)
#   twogpu    which adapter KVRELAY_GPU=0,1,2 gives each WebGPU runtime, the GPU-select layer's tests,
#             then deno task bench:two-gpu (prefill on GPU 0, decode on GPU 1, against both on GPU 0;
#             TWO_GPU_ARGS); not in the default STEPS: it needs two GPUs
# Writes to $OUT (6 files): bench_all.log (everything printed), summary.md (step status and tables),
# gpu_tests.log, model_device_$LABEL.json, codec_gpu_$LABEL.json, full_request_$LABEL.json,
# plus e2e_services.log.gz (the services' own output during e2e).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
OUT=${OUT:-/tmp/out}
LABEL=${LABEL:-h200}
QUICK=${QUICK:-0}
TOTAL_S=${TOTAL_S:-510}
E2E_CONFIGS=${E2E_CONFIGS:-cpu:cpu,webgpu:webgpu}
STEPS=${STEPS:-cuda,tests,model,codec,e2e,fastcodec,handoff}
FAST_ENCODERS=${FAST_ENCODERS:-webgpu,cuda}
HANDOFF_ENCODER=${HANDOFF_ENCODER:-webgpu}
HANDOFF_ARGS=${HANDOFF_ARGS:---w1 2048 --w2 8192 --links loopback,1,10,25,100 --reps 3}
mkdir -p "$OUT"
work=$(mktemp -d /tmp/kvrelay-bench.XXXXXX)
t0=$(date +%s)
exec > >(tee -a "$OUT/bench_all.log") 2>&1
tee_pid=$!
statuses=()

# step NAME LIMIT_S CMD...: runs CMD under `timeout`, cut to what is left of TOTAL_S; its stdout
# (the benches print their tables there) is also kept for summary.md.
step() {
  local name=$1 limit=$2 left s rc
  shift 2
  case ",$STEPS," in *",$name,"*) ;; *) return ;; esac
  left=$((t0 + TOTAL_S - $(date +%s) - 12))
  [ "$limit" -gt "$left" ] && limit=$left
  if [ "$limit" -lt 20 ]; then
    echo "== $name: skipped (${left}s left of TOTAL_S=$TOTAL_S)"
    statuses+=("| $name | skipped | – |")
    return
  fi
  echo
  echo "== $name (timeout ${limit}s): $*"
  s=$(date +%s)
  timeout -k 10 "$limit" "$@" | tee "$work/$name.out"
  rc=${PIPESTATUS[0]}
  local why=$rc
  [ "$rc" = 124 ] || [ "$rc" = 137 ] && why="$rc (timed out)"
  echo "== $name: exit $why after $(($(date +%s) - s)) s"
  statuses+=("| $name | $why | $(($(date +%s) - s)) s |")
}

echo "== kvrelay GPU benchmarks: $(date -u +%FT%TZ), host $(hostname), $(nproc) cores, OUT=$OUT LABEL=$LABEL QUICK=$QUICK"
git log -1 --format='== commit %h %s' 2>/dev/null || true

# --- setup ----------------------------------------------------------------------------------------
if [ -d .gpu ]; then
  # shellcheck source=infra/gpu/unpack.sh
  source infra/gpu/unpack.sh .gpu || echo "== setup: unpack reported a problem"
else
  echo "== setup: no .gpu/ (run infra/gpu/pack.sh and carry .gpu); using what is on PATH"
  export PATH=$PWD/.tools/node_modules/.bin:$PATH
fi
if ! deno --version >/dev/null 2>&1; then
  echo "== no usable deno: nothing can run"
  exit 1
fi
# Each service loads onnxruntime; wgpu's XDG_RUNTIME_DIR complaint is noise without a display.
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$work}
export NO_COLOR=1

# --- info -----------------------------------------------------------------------------------------
echo
echo "== info"
timeout 20 nvidia-smi -L 2>&1 || echo "(nvidia-smi: not available)"
timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 || true
deno --version
ldconfig -p 2>/dev/null | grep -E 'libvulkan\.so\.1 |libEGL\.so\.1 |libGLX_nvidia|libEGL_nvidia' | sed 's/^/  /' || true
echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-} __EGL_VENDOR_LIBRARY_FILENAMES=${__EGL_VENDOR_LIBRARY_FILENAMES:-}"
timeout -k 5 20 deno eval '
const a = await navigator.gpu?.requestAdapter({ powerPreference: "high-performance" });
if (!a) console.log("WebGPU adapter: none");
else {
  const i = a.info ?? {};
  console.log("WebGPU adapter:", JSON.stringify({
    vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description,
    isFallbackAdapter: i.isFallbackAdapter ?? a.isFallbackAdapter, features: a.features.size,
    maxBufferSize: a.limits.maxBufferSize, maxStorageBufferBindingSize: a.limits.maxStorageBufferBindingSize,
    timestampQuery: a.features.has("timestamp-query"),
  }));
}' 2>&1 || echo "WebGPU adapter probe failed or timed out (exit $?)"

# --- steps ----------------------------------------------------------------------------------------
# Benches write to out/bench/ (untracked); what is kept is copied to $OUT below.
mkdir -p out/bench
if [ "$QUICK" = 1 ]; then
  model_args=(--quick --timeout 40)
  codec_args=(--sizes 8192 --ks 8 --budget-s 20)
  e2e_args=(--sequential 2 --concurrent 2 --budget-s 35 --ready-timeout-s 25)
else
  model_args=(--timeout 65)
  codec_args=(--budget-s 60)
  e2e_args=(--sequential 8 --concurrent 8 --budget-s 55 --ready-timeout-s 40)
fi

step cuda 120 bash infra/cuda/build.sh

# --no-check: the pack leaves out the type packages (@types/*) that type-checking the tests needs
step tests 90 bash -c 'deno test -A --cached-only --no-check shared/model/webgpu_test.ts shared/model/device_test.ts \
  shared/model/kept_kv_test.ts shared/codec/webgpu/ shared/codec/fast/ shared/codec/cuda/ > "$0" 2>&1; rc=$?;
  tail -25 "$0"; exit $rc' "$OUT/gpu_tests.log"

step model 150 deno run -A --cached-only tests/bench/model_device_bench.ts --label "$LABEL" "${model_args[@]}"
cp out/bench/model_device_"$LABEL".json "$OUT/" 2>/dev/null || echo "(no model_device_$LABEL.json)"

step codec 125 deno run -A --cached-only tests/bench/codec_gpu_bench.ts --label "$LABEL" "${codec_args[@]}"
cp out/bench/codec_gpu_"$LABEL".json "$OUT/" 2>/dev/null || echo "(no codec_gpu_$LABEL.json)"

step e2e 135 deno run -A --cached-only tests/bench/full_request_bench.ts --label "$LABEL" \
  --configs "$E2E_CONFIGS" --log "$work/e2e_services.log" "${e2e_args[@]}"
cp out/bench/full_request_"$LABEL".json "$OUT/" 2>/dev/null || echo "(no full_request_$LABEL.json)"
[ -f "$work/e2e_services.log" ] && gzip -c "$work/e2e_services.log" > "$OUT/e2e_services.log.gz"

step fastcodec "${FASTCODEC_S:-150}" deno run -A --cached-only tests/bench/codec_fast_gpu_bench.ts --label "$LABEL" --tokens "${FAST_TOKENS:-8192}" \
  --encoder "$FAST_ENCODERS"
cp out/bench/codec_fast_gpu_"$LABEL".json "$OUT/" 2>/dev/null || echo "(no codec_fast_gpu_$LABEL.json)"

# shellcheck disable=SC2086
step handoff "${HANDOFF_S:-300}" deno run -A --cached-only tests/bench/handoff_bench.ts --label "$LABEL" --encoder "$HANDOFF_ENCODER" $HANDOFF_ARGS
cp out/bench/handoff_"$LABEL".json out/bench/handoff_"$LABEL".svg "$OUT/" 2>/dev/null ||
  echo "(no handoff_$LABEL.json)"

step twogpu "${TWO_GPU_S:-300}" bash -c 'for g in 0 1 2; do echo "KVRELAY_GPU=$g:"; KVRELAY_GPU=$g \
  KVRELAY_GPU_SELECT_LIST=1 timeout 60 deno run -A --cached-only shared/webgpu/gpu_select/testdata/pinned_adapters.ts \
  2>&1 | grep -E "gpu-select|wgpu"; done; deno test -A --cached-only --no-check shared/webgpu/gpu_select/ 2>&1 | tail -5;
  deno run -A --cached-only tests/bench/two_gpu.ts --gpus 0,1 --label "$0" --out "$1/two_gpu_$0.json" $2' \
  "$LABEL" "$OUT" "${TWO_GPU_ARGS:---device webgpu --codec-device cpu}"

# --- summary --------------------------------------------------------------------------------------
{
  echo "# kvrelay GPU host run ($LABEL, $(date -u +%FT%TZ), $(($(date +%s) - t0)) s)"
  echo
  echo "| step | exit | time |"
  echo "|---|---|---|"
  printf '%s\n' "${statuses[@]}"
  for n in cuda tests model codec e2e fastcodec handoff twogpu; do
    [ -s "$work/$n.out" ] || continue
    printf '\n## %s\n\n' "$n"
    cat "$work/$n.out"
  done
} > "$OUT/summary.md"
echo
echo "== done in $(($(date +%s) - t0)) s; $OUT:"
ls -la "$OUT"
rm -rf "$work"
exec >&- 2>&-
wait "$tee_pid" 2>/dev/null
exit 0
