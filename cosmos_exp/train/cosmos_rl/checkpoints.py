"""cosmos-rl's Hugging Face exports, exposed the way the DeepSpeed backend lays out checkpoints.

cosmos-rl writes `<run_dir>/cosmos_rl/sft/safetensors/step_N/` (weights, config, tokenizer and processor
files). We publish each complete export as `<run_dir>/checkpoints/step_N/`: a real directory of relative
symlinks to the export's files plus our `complete.json`, and `checkpoints/latest`, so the caption stage and
sweeps find checkpoints by step the same way for both backends (cosmos_exp.rundir), and the
run directory can be moved as a whole. Steps whose export was pruned (retention.py) are unlinked.
"""

import json
import os
import shutil
import time
from pathlib import Path
from typing import List, Optional

from cosmos_exp.repro.atomic import atomic_directory, write_json_atomic, write_text_atomic
from cosmos_exp import rundir
from cosmos_exp.train.cosmos_rl.render import output_dir

def exports_dir(run_dir: Path) -> Path:
    return output_dir(run_dir) / "safetensors"


def export_problem(path: Path) -> Optional[str]:
    """None when `path` is a complete HF export, else what is missing (an export still being written)."""
    if not (path / "config.json").is_file():
        return "no config.json"
    index = path / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = set(json.loads(index.read_text())["weight_map"].values())
        except (OSError, ValueError, KeyError, AttributeError) as err:
            return f"unreadable {index.name}: {err}"
        missing = sorted(s for s in shards if not (path / s).is_file())
        return f"missing shards {missing}" if missing else None
    return None if any(path.glob("*.safetensors")) else "no *.safetensors"


def _settled(path: Path, settle_s: float) -> bool:
    """No file of the export changed in the last `settle_s` seconds (cosmos-rl writes files in place)."""
    if settle_s <= 0:
        return True
    newest = max((f.stat().st_mtime for f in path.iterdir()), default=0.0)
    return time.time() - newest >= settle_s


def list_exports(run_dir: Path, settle_s: float = 0.0) -> List[Path]:
    """Complete exports, oldest step first; while training runs, only those untouched for `settle_s`."""
    root = exports_dir(run_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and rundir.is_step_dir(p) and export_problem(p) is None
             and _settled(p, settle_s)]
    return sorted(found, key=rundir.step_of)


def _link_step(run_dir: Path, export: Path) -> Path:
    step = rundir.step_of(export)
    final = rundir.step_dir(run_dir, step)
    with atomic_directory(final) as tmp:
        for item in sorted(export.iterdir()):
            # Relative to the final location (tmp and final are siblings, so the same relative path).
            os.symlink(os.path.relpath(item, final), tmp / item.name)
        write_json_atomic(tmp / rundir.COMPLETE, {"step": step, "backend": "cosmos_rl",
                                                "export": os.path.relpath(export, final)})
    return final


def sync_checkpoints(run_dir: Path, settle_s: float = 0.0) -> List[Path]:
    """Publish new exports as checkpoints/step_N, drop links to removed exports, update `latest`.
    Returns the published step directories, oldest first. `settle_s` > 0 while cosmos-rl still runs."""
    run_dir = Path(run_dir).resolve()
    exports = list_exports(run_dir, settle_s)
    # An export still being written is not removed from our links, only not (re)published yet.
    wanted = {e.name for e in exports} | {p.name for p in exports_dir(run_dir).glob("step_*") if p.is_dir()}
    root = rundir.checkpoints_dir(run_dir)
    if root.is_dir():
        for p in root.iterdir():
            info = p / rundir.COMPLETE
            if p.name not in wanted and rundir.is_step_dir(p) and info.is_file() and \
                    json.loads(info.read_text()).get("backend") == "cosmos_rl":
                info.unlink()  # marker first: a crash mid-delete leaves an incomplete dir, never a broken one
                shutil.rmtree(p)
    published = []
    for export in exports:
        target = rundir.step_dir(run_dir, rundir.step_of(export))
        if rundir.is_complete(target) and {c.name for c in target.iterdir()} >= {c.name for c in export.iterdir()}:
            published.append(target)  # already linked
        else:
            published.append(_link_step(run_dir, export))
    if published:
        write_text_atomic(root / rundir.LATEST, published[-1].name + "\n")
    elif (root / rundir.LATEST).is_file():
        (root / rundir.LATEST).unlink()
    return published
