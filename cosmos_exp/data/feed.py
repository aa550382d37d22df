"""Will the CPUs keep the GPUs fed? The stage=sft plan's data note, cheap (no torch, no decoding).

Clips needed per second per node = GPUs on the node x samples/s one GPU trains. There is no GPU figure measured
in this project yet, so the per-GPU rate is an assumption, stated in the note: cosmos-rl's published
Cosmos-Reason2-2B log shows ~8 samples/s per GPU (4 GPUs, 32 samples per rank, ~4 s per step); the 8B model
(and Reason 1's 7B) trains about a quarter of that. The CPU cost of a clip is what `stage=prepare
clip_cache.fill=true` measured for these clips and settings (a cost record in the cache directory): decoding +
resizing for a clip not yet cached, reading the entry for one that is. Without a record the note says so and uses
the figure measured for issue 15 (1.6 s of one core per 16-frame clip at 1936x1220).
"""

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from cosmos_exp.config.schema import Config

COSTS_DIR = "costs"  # under clip_cache.dir: one record per (dataset, split, settings, family)
ASSUMED_FRESH_SECONDS = 1.6  # issue 15: 0.7-1.0 s to decode 16 frames + 0.8 s to resize, 1936x1220, one core
SLACK = 1.25  # cores beyond the bare need: workers also collate, tokenise and pin


def gpu_samples_per_second(model_name: str) -> Tuple[float, str]:
    """The assumed training rate of one GPU for this model, and where the figure comes from."""
    name = model_name.lower()
    if "8b" in name or "7b" in name:
        return 2.0, "~2 samples/s per GPU assumed for an 8B-class model (a quarter of the 2B figure)"
    why = "cosmos-rl's published Cosmos-Reason2-2B log: ~8 samples/s per GPU"
    return 8.0, why if "2b" in name else why + " (no figure for this model; the 2B one used)"


def cores_available() -> Tuple[int, str]:
    """CPU cores one process of this job may use: SLURM_CPUS_PER_TASK under SLURM, else this process's affinity."""
    slurm = os.environ.get("SLURM_CPUS_PER_TASK")
    if slurm and slurm.isdigit() and int(slurm) > 0:
        return int(slurm), "SLURM_CPUS_PER_TASK"
    try:
        return len(os.sched_getaffinity(0)), "CPU affinity"
    except AttributeError:  # not Linux
        return os.cpu_count() or 1, "os.cpu_count()"


def cost_record_path(cfg: Config, split: str) -> Path:
    from cosmos_exp.data.clip_cache import PREPROCESS_VERSION

    v = cfg.dataset.vision
    what = {"root": os.path.abspath(str(cfg.dataset.root)), "split": split, "family": cfg.model.family,
            "version": PREPROCESS_VERSION,
            "vision": {k: v[k] for k in ("backend", "nframes", "fps", "min_frames", "max_frames", "min_pixels",
                                         "max_pixels", "total_pixels")}}
    key = hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:24]
    return Path(cfg.clip_cache.dir) / COSTS_DIR / f"{key}.json"


def read_cost_record(cfg: Config, split: str) -> Optional[Dict[str, Any]]:
    try:
        return json.loads(cost_record_path(cfg, split).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def data_feed_note(cfg: Config, global_batch: int) -> str:
    """One plan note: clips/s the GPUs take, CPU seconds per clip, cores that keeps them fed against cores here."""
    gpus = int(cfg.parallelism.nproc_per_node)
    per_gpu, source = gpu_samples_per_second(str(cfg.model.name))
    clips_per_s = gpus * per_gpu
    record = read_cost_record(cfg, cfg.dataset.train_split)
    cached = cfg.clip_cache.enabled and record is not None and record.get("cached") == record.get("clips")
    if record is None:
        seconds, how = ASSUMED_FRESH_SECONDS, (f"{ASSUMED_FRESH_SECONDS} s of CPU per clip assumed (issue 15's "
                                               "1936x1220 figure; stage=prepare clip_cache.fill=true measures yours)")
    elif cached:
        seconds = float(record["cached_read_s"])
        how = f"{seconds:.3f} s per clip read from the filled clip cache (measured by stage=prepare)"
    else:
        seconds = float(record["fresh_s"])
        how = f"{seconds:.3f} s of CPU per clip to decode and resize (measured by stage=prepare)"
        if cfg.clip_cache.enabled:
            how += "; later epochs read the cache"
    need = clips_per_s * seconds * SLACK
    cores, cores_from = cores_available()
    cores_here = cores * gpus if cores_from == "SLURM_CPUS_PER_TASK" else cores  # one SLURM task per GPU
    note = (f"data: {global_batch} samples per optimizer step; {source}, so {gpus} GPU(s) per node take "
            f"~{clips_per_s:g} clips/s; {how}: ~{need:.0f} cores per node keep them fed "
            f"(x{SLACK} for collation), this job has {cores_here} ({cores_from}"
            + (f" x {gpus} tasks" if cores_from == "SLURM_CPUS_PER_TASK" else "") + ")")
    if need > cores_here:
        note += (f". WARNING: data will be the bottleneck (~{need / max(cores_here, 1):.1f}x short): "
                 + ("fill the clip cache first (stage=prepare clip_cache.fill=true, on CPU nodes)"
                    if cfg.clip_cache.enabled and not cached else
                    "switch the clip cache on (clip_cache.enabled=true)" if not cfg.clip_cache.enabled else
                    "ask for more cores per task, or fewer frames / pixels"))
    return note
