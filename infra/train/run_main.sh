#!/usr/bin/env bash
# The main device run: train for TRAIN_SECONDS (wall clock, compile included), export the
# Hugging Face folder to $OUT/model, check it against transformers, run the held-out evals.
set -uo pipefail
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT/model"
t=$(date +%s)
python3 infra/train/train.py --tokenizer infra/model/kvrelay-tiny/tokenizer.json \
  --seconds "${TRAIN_SECONDS:-360}" ${TRAIN_ARGS:-} --compile --batch 64 --workers 14 --lr "${LR:-2e-3}" \
  --seed "${SEED:-1337}" --out "$OUT/model" 2>&1 | grep -v -e Warning -e 'Loading weights' | tee "$OUT/train.log"
echo "train+export $(( $(date +%s) - t ))s"
timeout "${EVAL_TIMEOUT:-220}" python3 infra/train/eval.py --model "$OUT/model" --out "$OUT/eval.json" 2>&1 | grep -v 'Loading weights' | tee "$OUT/eval.log"
echo "total $(( $(date +%s) - t ))s"
# the tokenizer files are already committed; keep what comes back within 8 files
rm -f "$OUT/model/tokenizer.json" "$OUT/model/tokenizer_config.json" "$OUT/model/special_tokens_map.json"
ls -la "$OUT" "$OUT/model"
