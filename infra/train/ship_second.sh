#!/usr/bin/env bash
# After `run_second.sh main` (infra/train/CORPUS.md): turns what the device returned into the shipped
# model folder and its first measurements, here, on the CPU.
#
#   bash infra/train/ship_second.sh RETURNED_DIR    # holds model.tar.part-*, train.log, eval.log, eval.json
#
# 1. joins and unpacks the fp16 export (into .cache/second/model, git-ignored);
# 2. writes infra/model/$NAME with its matrices in 8 bits (`kvrelay quantize-weights`), and the device's
#    logs beside them;
# 3. fits its KV predictor (`calibrate-kv`, training text only) into the folder;
# 4. generates once, greedy, through the runtime (the folder loads and speaks);
# 5. measures its KV (`eval:kv-stats`) and its held-out perplexity and tasks through the runtime at int8
#    (`eval:tasks`), into tests/bench/results/.
# The seed tables (eval:eb-sweep, eval:rates with --model) take longer; run them after. TRAINING.md is
# written by hand from the logs and CORPUS.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
returned=${1:?usage: ship_second.sh RETURNED_DIR}
NAME=${NAME:-kvrelay-small}
dst=infra/model/$NAME
corpus=.cache/corpus/out
command -v deno >/dev/null || export PATH=$root/.tools/node_modules/.bin:$PATH
kvrelay() { deno run -A --cached-only services/cli/main.ts "$@"; }

ls "$returned"/model.tar.part-* >/dev/null || { echo "ship_second.sh: no model.tar.part-* in $returned" >&2; exit 1; }
[ -d "$corpus/heldout" ] || { echo "ship_second.sh: $corpus missing (bash infra/train/fetch_corpus.sh)" >&2; exit 1; }
[ ! -e "$dst/model.safetensors" ] || { echo "ship_second.sh: $dst already holds weights" >&2; exit 1; }

rm -rf .cache/second && mkdir -p .cache/second
cat "$returned"/model.tar.part-* | tar -x -C .cache/second
fp16=.cache/second/model
echo "fp16 export: $(du -sh "$fp16" | cut -f1), $(grep -o '"num_hidden_layers": [0-9]*' "$fp16/config.json")"

mkdir -p "$dst"
# keep the committed tokenizer files; quantize-weights refuses a non-empty folder
stash=$(mktemp -d)
cp -a "$dst"/. "$stash"/ 2>/dev/null || true
rm -rf "$dst"
kvrelay quantize-weights --model "$fp16" --out "$dst"
cp -n "$stash"/* "$dst"/ 2>/dev/null || true
rm -rf "$stash"
for f in train.log eval.log eval.json; do [ -f "$returned/$f" ] && cp "$returned/$f" "$dst/$f"; done

python3 infra/train/calibration_prompts.py "$corpus" .cache/second/calib
kvrelay calibrate-kv --model "$dst" $(for f in .cache/second/calib/*.txt; do echo --prompt-file "$f"; done) \
  --out "$dst/kv_predictor.bin"

kvrelay generate --model "$dst" --temperature 0 --max-tokens 48 \
  --prompt "The Devil's Dictionary defines a cynic as"

results=tests/bench/results
deno run -A --cached-only tests/bench/kv_stats.ts --model "$dst" --tokens 4096 --out "$results/kv_stats_$NAME.json"
deno run -A --cached-only tests/bench/task_eval.ts --model "$dst" --codec fp16 --eviction-rate 1 --limit 100 \
  --ppl-chunks 64 --ppl-len 1024 --corpus "$corpus" --out "$results/task_eval_${NAME}_fp16kv.json"
echo "shipped $dst ($(du -sh "$dst" | cut -f1)); next: TRAINING.md, then eval:eb-sweep and eval:rates --model $dst"
