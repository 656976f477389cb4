#!/usr/bin/env bash
# Device runs of the second model (plan in infra/train/CORPUS.md). A device command may run 10
# minutes, so the work is two calls, each carrying .corpus (see pack_corpus.sh):
#
#   OUT=$OUT bash infra/train/run_second.sh tok    # unpack, the 8k tokenizer, time SDPA vs
#       FlexAttention document masks (--bench), 60 s smoke run (TRAIN_ARGS="--attn flex" to use it)
#       -> smoke logs. The tokenizer is infra/model/$NAME/tokenizer.json when it is in the tree
#       (bpe_train.py trains it without a GPU host; then nothing is retrained, and TOK_CHECK=1
#       trains one with tokenizer.py and compares the files); without it, tokenizer.py trains one ->
#       $OUT/tokenizer.json, tokenizer_config.json, special_tokens_map.json: commit the three to
#       infra/model/$NAME/ before the next call.
#   OUT=$OUT bash infra/train/run_second.sh main   # train TRAIN_SECONDS, export, verify, eval
#       -> $OUT/model.tar.part-aa.. (the exported folder, split below the 16 MiB a returned file may
#       have), train.log, eval.log, eval.json: 8 files at most, as the device returns.
#
# Shape: LAYERS (default 6) x hidden 512, 8 query heads and 4 KV heads of head_dim 128, SwiGLU 1536,
# tied 8192-token embeddings, 4096-token rows: 27,793,920 parameters.
set -uo pipefail
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
OUT=${OUT:-/tmp/out}
NAME=${NAME:-kvrelay-small}
CORPUS=.cache/corpus/out
SHAPE="--hidden 512 --layers ${LAYERS:-6} --heads 8 --kv-heads 4 --head-dim 128 --intermediate 1536"
COMMON="--corpus $CORPUS --seq 4096 --batch ${BATCH:-32} --mix text --workers 14 --seed ${SEED:-1337}"
t=$(date +%s)
mkdir -p "$OUT"

# a warm machine keeps ignored files between calls: unpack only when the corpus is not there
if ! (cd "$CORPUS" 2>/dev/null && sha256sum -c --quiet "$OLDPWD/.corpus/SHA256SUMS" 2>/dev/null); then
  bash infra/train/pack_corpus.sh --unpack || exit 1
fi
echo "corpus ready $(( $(date +%s) - t ))s"

case "${1:-}" in
tok)
  tok=infra/model/$NAME/tokenizer.json
  if [ -f "$tok" ]; then
    echo "tokenizer: $tok (in the tree, not retrained)"
    if [ -n "${TOK_CHECK:-}" ]; then  # the tokenizers package on the same texts
      python3 infra/train/tokenizer.py "$CORPUS" /tmp/tokcheck/tokenizer.json "${VOCAB:-8192}" 4096 | tail -1
      for f in tokenizer.json tokenizer_config.json special_tokens_map.json; do
        cmp "$(dirname "$tok")/$f" "/tmp/tokcheck/$f" && echo "tokenizers writes the same $f"
      done 2>&1 | tee -a "$OUT/smoke_train.log"
      echo "tokenizer check $(( $(date +%s) - t ))s"
    fi
  else
    tok=$OUT/tokenizer.json
    python3 infra/train/tokenizer.py "$CORPUS" "$tok" "${VOCAB:-8192}" 4096 || exit 1
    echo "tokenizer $(( $(date +%s) - t ))s"
  fi
  for attn in sdpa flex; do  # document masks: dense mask to SDPA against FlexAttention block masks
    timeout 90 python3 infra/train/train.py $COMMON $SHAPE --tokenizer "$tok" --bench \
      --attn $attn --out /tmp/bench 2>&1 | grep -v Warning | tail -4 | sed "s/^/$attn: /" | tee -a "$OUT/smoke_train.log"
  done
  timeout 150 python3 infra/train/train.py $COMMON $SHAPE --tokenizer "$tok" --seconds 60 \
    --compile --out /tmp/smoke/model ${TRAIN_ARGS:-} 2>&1 | grep -v Warning | tee -a "$OUT/smoke_train.log" | tail -15
  timeout 100 python3 infra/train/eval.py --model /tmp/smoke/model --corpus "$CORPUS" --context 4096 \
    --scale 0.06 --out "$OUT/smoke_eval.json" 2>&1 | tee "$OUT/smoke_eval.log" | tail -20
  ;;
main)
  tok=infra/model/$NAME/tokenizer.json
  [ -f "$tok" ] || { echo "run_second.sh: $tok missing (bpe_train.py writes it, or commit the files of a 'tok' call that trained one)" >&2; exit 1; }
  python3 infra/train/train.py $COMMON $SHAPE --tokenizer "$tok" --seconds "${TRAIN_SECONDS:-400}" --compile \
    --lr "${LR:-1.5e-3}" --out /tmp/second/model ${TRAIN_ARGS:-} 2>&1 \
    | grep -v -e Warning -e 'Loading weights' | tee "$OUT/train.log"
  echo "train+export $(( $(date +%s) - t ))s"
  timeout "${EVAL_TIMEOUT:-120}" python3 infra/train/eval.py --model /tmp/second/model --corpus "$CORPUS" \
    --context 4096 --scale "${EVAL_SCALE:-0.5}" --out "$OUT/eval.json" 2>&1 | grep -v 'Loading weights' \
    | tee "$OUT/eval.log"
  cp /tmp/second/train_summary.json /tmp/second/model/ 2>/dev/null
  tar -cf - -C /tmp/second model | split -b 15m - "$OUT/model.tar.part-"
  ;;
*)
  echo "usage: run_second.sh tok|main" >&2
  exit 2
  ;;
esac
echo "total $(( $(date +%s) - t ))s"
ls -la "$OUT"
