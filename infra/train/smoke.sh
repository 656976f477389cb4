#!/usr/bin/env bash
# Device smoke test (<= ~2.5 min): versions, tokenizer training, loader/eager/compiled
# throughput, a 30 s training run, export + transformers reload check, a small eval.
set -uo pipefail
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT/tok"
python3 -c 'import torch,tokenizers,safetensors,transformers,numpy;print("torch",torch.__version__,"tok",tokenizers.__version__,"st",safetensors.__version__,"tf",transformers.__version__,"np",numpy.__version__,torch.cuda.get_device_name(0))'
t=$(date +%s)
python3 infra/train/tokenizer.py .cache/text/corpus "$OUT/tok/tokenizer.json" 4096 || exit 1
echo "tokenizer took $(( $(date +%s) - t ))s"
timeout 100 python3 infra/train/train.py --tokenizer "$OUT/tok/tokenizer.json" --bench --out /tmp/bench --batch ${BATCH:-64} --workers 14 2>&1 | grep -v Warning | tail -8
timeout 120 python3 infra/train/train.py --tokenizer "$OUT/tok/tokenizer.json" --seconds 30 --out /tmp/smoke/model --batch ${BATCH:-64} --workers 14 ${COMPILE:-} 2>&1 | tail -12
cp /tmp/smoke/model/config.json "$OUT/smoke_config.json" 2>/dev/null
timeout 100 python3 infra/train/eval.py --model /tmp/smoke/model --scale 0.06 --out "$OUT/smoke_eval.json" 2>&1 | tail -25
echo "smoke total $(( $(date +%s) - t ))s"
