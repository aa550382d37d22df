"""The spread across training seeds: runs of one configuration that differ only in their training seed (a grid
such as `-m stage=train_eval train.seed=0,1,2`), so a reader can tell a hyperparameter's effect from seed noise.

A run's bootstrap CI says how much its number would move with other evaluation items; the spread across seeds
says how much it moves with another training run of the same settings. stage=report puts the two side by side
per group of seeds, and stage=compare does so for each side whose run belongs to such a group.
"""

import statistics
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from cosmos_exp import rundir
from cosmos_exp.sweep.aggregate import Child, child_dirs, load_child, swept_keys

SEED_KEYS = ("train.seed", "seed")


def seed_of(c: Child) -> Optional[str]:
    return next((c.overrides[k] for k in SEED_KEYS if k in c.overrides), None)


def seed_groups(children: List[Child], keys: List[str]) -> Dict[Tuple, List[Child]]:
    """Children with a seed override, grouped by every other swept value, dataset and split; two seeds or more.
    (Not by checkpoint step: each seed's train-then-evaluate run may pick another step.)"""
    others = [k for k in keys if k not in SEED_KEYS]
    groups: Dict[Tuple, List[Child]] = {}
    for c in children:
        if seed_of(c) is not None:
            groups.setdefault((tuple((k, c.overrides.get(k)) for k in others), c.dataset, c.split), []).append(c)
    return {g: m for g, m in groups.items() if len({seed_of(c) for c in m}) > 1}


def spread(members: List[Child], metric: str, confidence: float = 0.95) -> Optional[Dict[str, Any]]:
    """The metric's headline across the seeds of one group, beside the runs' mean CI half-width."""
    scored = [c for c in members if c.metrics.get(metric, {}).get("headline") is not None]
    if len(scored) < 2:
        return None
    values = [float(c.metrics[metric]["headline"]) for c in scored]
    widths = [(c.metrics[metric]["ci_high"] - c.metrics[metric]["ci_low"]) / 2 for c in scored
              if c.metrics[metric].get("ci_low") is not None and c.metrics[metric].get("ci_high") is not None]
    sd = statistics.stdev(values)
    half = statistics.fmean(widths) if widths else None
    text = (f"across {len(values)} training seeds ({', '.join(str(seed_of(c)) for c in scored)}): mean "
            f"{statistics.fmean(values):.4g}, sd {sd:.4g}, range [{min(values):.4g}, {max(values):.4g}]")
    if half is not None:
        text += f"; one run's {confidence * 100:g}% CI half-width is {half:.4g} on average"
        if sd > half:
            text += (": training seeds move the number more than the evaluation items do; a difference within the "
                     "seed spread is not a hyperparameter's effect")
        elif sd < half:
            text += ": the evaluation items move the number more than the training seeds do"
    return {"metric": metric, "seeds": [seed_of(c) for c in scored], "values": values,
            "mean": statistics.fmean(values), "sd": sd, "min": min(values), "max": max(values),
            "mean_ci_half_width": half, "runs": [c.run_dir for c in scored], "text": text}


def group_spreads(children: List[Child], keys: List[str], metrics: List[str],
                  confidence: float = 0.95) -> List[Dict[str, Any]]:
    """One entry per group of seeds and metric (what report.json and report.md show)."""
    out = []
    for (others, dataset, split), members in seed_groups(children, keys).items():
        for m in metrics:
            found = spread(members, m, confidence)
            if found:
                out.append({"settings": dict(others), "dataset": dataset, "split": split, **found})
    return out


def _job_of(run: Path) -> Optional[Path]:
    """The multirun job a scored run belongs to: the run itself, or the train-then-evaluate trial holding it."""
    for job in (run, run.parent.parent):
        if (job.parent / rundir.SWEEP_JSON).is_file() and rundir.is_run_dir(job):
            return job
    return None


def spread_of_run(run: Path, confidence: float = 0.95) -> Dict[str, Dict[str, Any]]:
    """{metric: spread} over the seeds of the group `run` belongs to in its multirun; {} when it is no such run."""
    job = _job_of(Path(run).resolve())
    if job is None:
        return {}
    children = [c for c in (load_child(p) for p in child_dirs(job.parent)) if not c.problem]
    this = next((c for c in children if Path(c.run_dir) == job), None)
    if this is None or seed_of(this) is None:
        return {}
    for members in seed_groups(children, swept_keys(children)).values():
        if this in members:
            return {m: s for m in this.metrics if (s := spread(members, m, confidence))}
    return {}


def render_seed_spread(sides: Dict[str, Dict[str, Dict[str, Any]]]) -> str:
    """comparison.md's section on the training seeds of each side (empty when neither side has a group)."""
    lines = [f"- {side} ({m}): {s['text']}" for side, spreads in sides.items() for m, s in spreads.items()]
    if not lines:
        return ""
    return "\n".join(["", "## Spread across training seeds", "",
                      "The paired differences above compare one training run per side; each side's number across "
                      "training seeds of the same settings:", "", *lines]) + "\n"
