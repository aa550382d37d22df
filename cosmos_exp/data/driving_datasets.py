"""A driving dataset's split as trajectory clips, whichever source the config names:

    dataset.kind=driving          clips in the clip-files layout (<root>/<split>/<rig>/<scene>/), e.g. the synthetic
                                  rigs that stage=prepare generates from dataset.driving_synthetic
    dataset.kind=physical_ai_av   NVIDIA's PhysicalAI-AV in its own layout (dataset.physical_ai_av, root = dataset.root)

`dataset.rigs` picks rigs of a driving split (all of them when empty), so one dataset trains on rig A, on rig B
or on both, and evaluates each rig with the same scene ids (paired scenes).
"""

from pathlib import Path
from typing import List, Tuple

from omegaconf import OmegaConf

from cosmos_exp.config.data import DatasetConfig
from cosmos_exp.config.errors import DataError
from cosmos_exp.config.trajectory import ActionSpaceConfig
from cosmos_exp.data.driving_clip import DrivingClip
from cosmos_exp.data.report import DataReport

DRIVING_KINDS = ("driving", "physical_ai_av")


def split_rigs(d: DatasetConfig, split: str) -> List[str]:
    """The rigs of a driving split that this config reads: dataset.rigs, else every <root>/<split>/<rig>/ folder."""
    if d.rigs:
        return list(d.rigs)
    split_dir = Path(d.root).expanduser() / split
    return sorted(p.name for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith(".")) \
        if split_dir.is_dir() else []


def count_driving(d: DatasetConfig, split: str) -> int:
    """Cheap count for plans: clip folders listed, nothing read (PhysicalAI-AV: its clip index is not opened here,
    so the count is unknown: -1)."""
    if d.kind == "physical_ai_av":
        return -1
    root = Path(d.root).expanduser() / split
    per_rig = [sum(1 for p in (root / rig).iterdir() if p.is_dir() and not p.name.startswith("."))
               for rig in split_rigs(d, split) if (root / rig).is_dir()]
    return sum(min(n, d.max_items) if d.max_items else n for n in per_rig)


def driving_clips(d: DatasetConfig, split: str, action_cfg: ActionSpaceConfig) -> Tuple[List[DrivingClip], DataReport]:
    """Every usable clip of the split (rigs in order, scenes by id within each) and the report of those skipped."""
    if d.kind == "physical_ai_av":
        from cosmos_exp.data.physical_ai_av import read_physical_ai_av

        reader_cfg = OmegaConf.merge(d.physical_ai_av, {"root": str(d.root), "split": split, "strict": bool(d.strict)})
        clips, report = read_physical_ai_av(reader_cfg, action_cfg)
        clips = clips[: d.max_items] if d.max_items else clips
    elif d.kind == "driving":
        from cosmos_exp.data.driving_clip_files import read_driving_clips

        rigs = split_rigs(d, split)
        if not rigs:
            raise DataError(f"{Path(d.root).expanduser() / split}: no rig folders (<root>/<split>/<rig>/<scene>/)")
        clips, report = [], DataReport(dataset=d.name, split=split)
        for rig in rigs:  # dataset.max_items caps each rig, so the rigs keep their paired scenes
            found, part = read_driving_clips(d.root, split, rig, strict=bool(d.strict), dataset=d.name)
            clips += found[: d.max_items] if d.max_items else found
            report.found += part.found
            report.skipped += part.skipped
    else:
        raise DataError(f"dataset.kind={d.kind} holds no driving clips; use one of {', '.join(DRIVING_KINDS)}")
    report.used = len(clips)
    return clips, report
