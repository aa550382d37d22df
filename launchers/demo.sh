#!/usr/bin/env bash
# The whole pipeline on a tiny random Qwen2.5-VL and synthetic driving clips (experiment=demo), each
# stage one cosmos-exp run whose directory the next stage reads:
#   prepare -> sft (DeepSpeed) -> caption (the last checkpoint) -> judge (local scorer + BLEU)
# then dry runs of what needs real resources (an LLM judge, a real model).
# A stage that is not built yet is shown as a dry run instead. Usage: bash launchers/demo.sh [overrides...]
set -uo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} WANDB_MODE=${WANDB_MODE:-offline} TOKENIZERS_PARALLELISM=false
exp=.venv/bin/cosmos-exp
demo_dir="outputs/demo/$(date +%Y-%m-%d_%H-%M-%S)"
mkdir -p "$demo_dir"
common=(experiment=demo "$@")

stage() {  # stage <name> <run-dir> <overrides...>: run it; exit 3 (not built yet) falls back to a dry run
  local name=$1 dir=$2; shift 2
  echo; echo "=== stage $name -> $dir"
  "$exp" "${common[@]}" "stage=$name" "hydra.run.dir=$dir" "$@"
  local rc=$?
  if [ $rc -eq 3 ]; then
    echo "--- $name is not built yet; its dry run:"
    "$exp" "${common[@]}" "stage=$name" "$@" dry_run=true || true
    return 3
  fi
  if [ $rc -ne 0 ]; then echo "demo: stage $name failed (exit $rc); see $dir/log.txt" >&2; exit $rc; fi
}

stage prepare "$demo_dir/1_prepare"
stage sft "$demo_dir/2_sft"
ckpt="$demo_dir/2_sft/checkpoints/$(cat "$demo_dir/2_sft/checkpoints/latest" 2>/dev/null)"
[ -d "$ckpt" ] || ckpt=outputs/models/tiny_qwen2_5_vl  # sft not built yet: caption the base model
stage caption "$demo_dir/3_caption" "model.path=$ckpt"
stage judge "$demo_dir/4_judge" "captions=$demo_dir/3_caption"

echo; echo "=== dry run: the same judge with an LLM judge (eval=full) - calls and estimated cost, no requests"
"$exp" "${common[@]}" stage=judge eval=full "captions=$demo_dir/3_caption" dry_run=true || true
echo; echo "=== dry run: the Cosmos Cookbook Reason 2 SFT recipe on a real model (paths are placeholders)"
"$exp" experiment=reason2_sft_recipe model.path=/path/to/Cosmos-Reason2-8B dataset.root=/path/to/data dry_run=true \
  || echo "(expected: the recipe needs real paths; the error above names the key to set)"

echo; echo "demo finished; every stage's run directory is under $demo_dir"
[ -f "$demo_dir/4_judge/summary.json" ] && { echo "scores ($demo_dir/4_judge/summary.json):"; head -c 1500 "$demo_dir/4_judge/summary.json"; echo; }
exit 0
