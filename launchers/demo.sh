#!/usr/bin/env bash
# The whole pipeline on a tiny random Qwen2.5-VL and synthetic driving clips (experiment=demo), each
# stage one cosmos-exp run whose directory the next stage reads:
#   prepare -> sft (DeepSpeed, on a blend of captions and multiple-choice questions) -> caption (base model and
#   last checkpoint) -> judge -> compare
#   + multiple-choice VQA with the fine-tuned checkpoint, and dry runs of what needs real resources.
# Usage: bash launchers/demo.sh [overrides...]
set -uo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} WANDB_MODE=${WANDB_MODE:-offline} TOKENIZERS_PARALLELISM=false
exp=.venv/bin/cosmos-exp
demo_dir="outputs/demo/$(date +%Y-%m-%d_%H-%M-%S)"
mkdir -p "$demo_dir"
common=(experiment=demo "$@")

stage() {  # stage <name> <run-dir> <overrides...>: run it; the demo stops at the first stage that fails
  local name=$1 dir=$2; shift 2
  echo; echo "=== stage $name -> $dir"
  "$exp" "${common[@]}" "stage=$name" "hydra.run.dir=$dir" "$@"
  local rc=$?
  if [ $rc -ne 0 ]; then echo "demo: stage $name failed (exit $rc); see $dir/log.txt" >&2; exit $rc; fi
}

base=outputs/models/tiny_qwen2_5_vl
stage prepare "$demo_dir/1_prepare"
stage sft "$demo_dir/2_sft"
ckpt="$demo_dir/2_sft/checkpoints/$(cat "$demo_dir/2_sft/checkpoints/latest")"
stage caption "$demo_dir/3_caption_base" dataset=synthetic_av "model.path=$base"
stage caption "$demo_dir/3_caption_sft" dataset=synthetic_av "model.path=$ckpt"
stage judge "$demo_dir/4_judge_base" "captions=$demo_dir/3_caption_base"
stage judge "$demo_dir/4_judge_sft" "captions=$demo_dir/3_caption_sft"
stage compare "$demo_dir/5_compare" "a=$demo_dir/4_judge_base" "b=$demo_dir/4_judge_sft"
stage caption "$demo_dir/6_mcq_caption" dataset=synthetic_av_mcq "model.path=$ckpt" generation.max_new_tokens=16
stage judge "$demo_dir/7_mcq_judge" dataset=synthetic_av_mcq eval=mcq "captions=$demo_dir/6_mcq_caption"

echo; echo "=== dry run: the same judge with an LLM judge (eval=full): calls and estimated cost, no requests"
"$exp" "${common[@]}" stage=judge eval=full "captions=$demo_dir/3_caption_sft" dry_run=true | sed -n '/^plan for stage/,$p'
echo; echo "=== validation before work: the cookbook Reason 2 recipe without real weights is refused, naming the key"
"$exp" experiment=reason2_sft_recipe model.path=/path/to/Cosmos-Reason2-8B dataset.root=/path/to/data dry_run=true

echo; echo "demo finished; every stage's run directory is under $demo_dir"
[ -f "$demo_dir/5_compare/comparison.md" ] && { echo "base vs fine-tuned ($demo_dir/5_compare/comparison.md):"; cat "$demo_dir/5_compare/comparison.md"; }
.venv/bin/python - "$demo_dir/7_mcq_judge" <<'EOF'
# The MCQ figure beside what the question alone would score: each question kind's most common training letter
# (the options keep one order per kind, dataset.synthetic.mcq_option_order=fixed).
import json, sys
from collections import Counter
from pathlib import Path
from omegaconf import OmegaConf
run = Path(sys.argv[1])
mcq = json.loads((run / "summary.json").read_text())["metrics"]["mcq"]
acc, root = mcq["accuracy"], Path(OmegaConf.load(run / "resolved.yaml").dataset.root)
def questions(split):
    return [json.loads(line) for line in (root / split / "mcq.jsonl").read_text().splitlines()]
kind = lambda q: q["id"].rsplit("_", 1)[1]
letters = {}
for q in questions("train"):
    letters.setdefault(kind(q), Counter())[q["answer"]] += 1
held_out = questions("eval")
prior = sum(q["answer"] == letters[kind(q)].most_common(1)[0][0] for q in held_out) / len(held_out)
print(f"multiple choice, fine-tuned, held-out videos: accuracy {acc['mean']:.3f} [{acc['ci_low']:.3f}, "
      f"{acc['ci_high']:.3f}] on {acc['n']} questions about {acc['groups']} videos (95% bootstrap CI resampling "
      f"videos); chance 0.25, the most common training letter of each question {prior:.3f}; parseable "
      f"{mcq['parseable_rate']:.2f}")
EOF
exit 0
