#!/usr/bin/env bash
# Create ./.venv (once) and install cosmos_exp into it, editable.
# torch is installed first and pinned: on CPU machines torch==2.13.0 is a local CPU build, and letting
# another package pick torch pulls gigabytes of CUDA wheels. Override with TORCH_SPEC=... on GPU machines.
# Usage: bash launchers/install.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  "${PYTHON:-python3}" -m venv .venv
fi
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
"${pip[@]}" "${TORCH_SPEC:-torch==2.13.0}"
extras=""
if [ "${1:-}" = "--test" ]; then extras="[test]"; fi
"${pip[@]}" -e ".${extras}" 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
[ "${1:-}" != "--test" ] || "${pip[@]}" --no-deps "cosmos-rl==0.4.7" "toml==0.10.2"  # tests validate rendered TOMLs with its pydantic config module and its TOML reader
.venv/bin/python -c "import cosmos_exp, torch, transformers, hydra; print('installed cosmos_exp', cosmos_exp.__version__, 'torch', torch.__version__, 'transformers', transformers.__version__)"
