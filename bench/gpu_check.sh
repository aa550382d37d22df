#!/usr/bin/env bash
# The GPU check (README "GPU check"): bash bench/gpu_check.sh [--part sft|caption|trajectory|all] [--cpu-smoke]
# [--out FILE] [--work DIR] [--data DIR] [--results FILE]. Where the Python lacks our packages (the lent GPU
# machine, no network), first installs the wheels bench/gpu_check_wheels.sh carried in .whl/ into /tmp/site:
# Hydra, omegaconf, DeepSpeed built with its ops off, our tested transformers, decord, ...
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
py="${PYTHON:-python3}"
if compgen -G "$repo/.whl/*.whl" > /dev/null && ! "$py" -c "import importlib.util as u, sys
sys.exit(any(u.find_spec(m) is None for m in ('hydra', 'omegaconf', 'deepspeed', 'decord')))"; then
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$repo"/.whl/*.whl
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
# The checkout's cosmos_exp (what travelled with this call), then bench/ for the gpu_check package.
export PYTHONPATH="$repo:$repo/bench${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=offline TOKENIZERS_PARALLELISM=false
cd "$repo"
exec "$py" -m gpu_check "$@"
