#!/usr/bin/env bash
# Prepare, on a machine with the package registry and PyAV, what the GPU check needs on a lent GPU machine that
# reaches no network (README "GPU check"):
#   .whl/              wheels of what that machine's Python lacks, at the versions installed here (the ones CI
#                      tests): Hydra, omegaconf (+ antlr4, built here from its sdist), DeepSpeed (no binary wheel
#                      exists: built here with every op off, DS_BUILD_OPS=0; the check compiles nothing, our loop
#                      uses torch's fused AdamW), its hjson and pydantic, our transformers (the machine's is
#                      older), regex, typing-extensions, and decord (the machine has no video decoder)
#   .gpu_check_data/   the caption clips of the real preset (the machine has no PyAV to draw them)
# Both are git-ignored (.git/info/exclude) and must travel with the call: carry [".whl", ".gpu_check_data"].
# The whole tree that travels must stay under the device tool's 64 MiB; this script checks it.
# Usage: bash bench/gpu_check_wheels.sh        (PYTHON=... picks the interpreter; default .venv/bin/python)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
py="${PYTHON:-}"
if [ -z "$py" ]; then
  if [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python3; fi
fi
limit_mib=64

exclude="$(git rev-parse --git-path info/exclude)"
mkdir -p "$(dirname "$exclude")"
for path in /.whl/ /.gpu_check_data/; do
  grep -qxF "$path" "$exclude" 2>/dev/null || echo "$path" >> "$exclude"
done

version() { "$py" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$1"; }
pin() { for name in "$@"; do echo "$name==$(version "$name")"; done; }

rm -rf .whl && mkdir .whl
# Binary (or pure-Python) wheels for the GPU machine's Python 3.12 on x86-64 Linux.
platforms=()
for p in manylinux_2_28 manylinux_2_27 manylinux_2_17 manylinux2014 manylinux2010 manylinux1; do
  platforms+=(--platform "${p}_x86_64")
done
mapfile -t pins < <(pin hydra-core omegaconf hjson pydantic pydantic-core annotated-types typing-inspection \
                        typing-extensions regex transformers decord)
"$py" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${platforms[@]}" -d .whl "${pins[@]}"
# Source-only packages, built here: both are pure Python once DeepSpeed's ops are off.
"$py" -m pip wheel --quiet --no-deps --no-binary=:all: -w .whl "$(pin antlr4-python3-runtime)"
DS_BUILD_OPS=0 "$py" -m pip wheel --quiet --no-deps --no-build-isolation --no-binary=:all: -w .whl \
  "$(pin deepspeed)"

PYTHONPATH="$repo:$repo/bench" "$py" -m gpu_check --prepare-data .gpu_check_data

# What travels: tracked and untracked-not-ignored files, plus the two carried folders.
tree=$(git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- | tail -1 | cut -f1)
carried=$(du -sb .whl .gpu_check_data | awk '{s += $1} END {print s}')
total=$((tree + carried))
ls -1 .whl
awk -v t="$tree" -v c="$carried" -v l="$limit_mib" 'BEGIN {
  printf "gpu_check_wheels: tree %.1f MiB + .whl and .gpu_check_data %.1f MiB = %.1f MiB (limit %d MiB)\n",
         t / 1048576, c / 1048576, (t + c) / 1048576, l }'
if [ "$total" -gt $((limit_mib * 1048576)) ]; then
  echo "gpu_check_wheels: over the device tool's $limit_mib MiB: the call would be refused" >&2
  exit 1
fi
