"""Read a sweep's child runs into rows (no plotting, no torch): what stage=report tabulates and ranks."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from cosmos_exp.evaluate.headline import LOWER_IS_BETTER, best_of, headline_ci
from cosmos_exp import rundir

# Keys that identify the checkpoint, shown as its own columns rather than as swept overrides.
CHECKPOINT_KEYS = ("model.path", "sweep.checkpoints")


@dataclass
class Child:
    job: str
    run_dir: str
    status: str
    stage: Optional[str] = None
    checkpoint: Optional[str] = None
    step: Optional[int] = None
    train_run: Optional[str] = None
    dataset: Optional[str] = None
    split: Optional[str] = None
    confidence: Optional[float] = None
    overrides: Dict[str, str] = field(default_factory=dict)
    metrics: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    problem: Optional[str] = None
    role: Optional[str] = None
    # From resolved.yaml: which presets the child ran with.
    config: Dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        if self.role:
            return f"base model (step {self.step})"
        return f"step_{self.step}" if self.step is not None else f"job {self.job}"


def _job_order(path: Path) -> Tuple[int, str]:
    return (int(path.name), "") if path.name.isdigit() else (1 << 30, path.name)


def child_dirs(sweep_dir: Path) -> List[Path]:
    """Run directories directly under the sweep directory (Hydra's <sweep>/<job num>), in job order."""
    return sorted((p for p in Path(sweep_dir).iterdir() if p.is_dir() and rundir.is_run_dir(p)), key=_job_order)


def _overrides(run: Dict[str, Any]) -> Dict[str, str]:
    out = {}
    for item in run.get("overrides") or []:
        if isinstance(item, str) and "=" in item:
            key, value = item.split("=", 1)
            out[key.lstrip("+~")] = value
    return out


def load_child(path: Path) -> Child:
    run = rundir.read_run_json(path)
    child = Child(job=path.name, run_dir=str(path.resolve()), status=str(run.get("status", "unknown")),
                  stage=run.get("stage"), overrides=_overrides(run))
    child.config = _config_of(path)
    parts = rundir.read_json_optional(path / rundir.TRAIN_EVAL_JSON) or {}
    scored = Path(parts["evaluate"]) if parts.get("evaluate") else path  # a train-then-evaluate run: its evaluation
    summary = rundir.read_json_optional(scored / rundir.SUMMARY_JSON)
    record = rundir.read_json_optional(scored / rundir.EVALUATE_JSON) or {}
    if summary is None:
        child.problem = f"no readable {rundir.SUMMARY_JSON}" + (f" (run status {child.status})" if child.status else "")
        return child
    child.checkpoint = record.get("checkpoint") or summary.get("checkpoint")
    child.step = record.get("step")
    child.train_run = record.get("train_run")
    child.role = record.get("role")
    if child.step is None and child.checkpoint:
        try:
            child.step = rundir.step_of(child.checkpoint)
            train_run = rundir.train_run_of(child.checkpoint)
            child.train_run = str(train_run) if train_run is not None else None
        except ValueError:
            pass
    dataset = (summary.get("caption_index") or {}).get("dataset") or {}
    child.dataset = record.get("dataset") or dataset.get("name")
    child.split = record.get("split") or dataset.get("split") or child.config.get("split")
    child.confidence = (summary.get("bootstrap") or {}).get("confidence")
    child.metrics = {m: headline_ci(m, s) for m, s in (summary.get("metrics") or {}).items() if isinstance(s, dict)}
    return child


def _config_of(path: Path) -> Dict[str, Any]:
    """The presets a child ran with, from its resolved.yaml (empty when unreadable)."""
    from omegaconf import OmegaConf

    try:
        cfg = rundir.load_run_config(path, typed=False)
    except Exception:  # a missing or broken file: the row still stands on summary.json
        return {}
    picked = {"model": "model.name", "dataset": "dataset.name", "eval": "eval.name", "metrics": "eval.metrics",
              "split": "generation.split"}
    out = {k: OmegaConf.select(cfg, v, default=None) for k, v in picked.items()}
    if out["split"] is None:
        out["split"] = OmegaConf.select(cfg, "dataset.eval_split", default=None)
    if out["metrics"] is not None:
        out["metrics"] = list(out["metrics"])
    return out


def swept_keys(children: List[Child]) -> List[str]:
    """Override keys whose values differ between children (the checkpoint keys have their own columns)."""
    keys = sorted({k for c in children for k in c.overrides} - set(CHECKPOINT_KEYS))
    return [k for k in keys if len({c.overrides.get(k) for c in children}) > 1]


def _overlap(a: Dict[str, Any], b: Dict[str, Any]) -> Optional[bool]:
    if None in (a["ci_low"], a["ci_high"], b["ci_low"], b["ci_high"]):
        return None
    return a["ci_low"] <= b["ci_high"] and b["ci_low"] <= a["ci_high"]


def describe(c: Child, keys: List[str]) -> str:
    """A child's name in a sentence: its step, plus the other swept values and its job when those are swept."""
    if not keys:
        return c.label
    return f"{c.label} [{', '.join(f'{k}={c.overrides.get(k)}' for k in keys)}] (job {c.job})"


def pick_best(children: List[Child], metric: str, keys: List[str] = ()) -> List[Dict[str, Any]]:
    """Per (dataset, split): the child with the best headline (the lowest for LOWER_IS_BETTER metrics, else the highest),
    the children tied with it, and those whose CI overlaps its CI (not separable from it). `keys`: the other
    swept overrides, named in the text so rows of the same step stay distinguishable."""
    keys = list(keys)
    groups: Dict[Tuple[Any, Any], List[Child]] = {}
    for c in children:
        if c.metrics.get(metric, {}).get("headline") is not None:
            groups.setdefault((c.dataset, c.split), []).append(c)
    picks = []
    for (dataset, split), members in sorted(groups.items(), key=lambda kv: str(kv[0])):
        top = best_of(metric, [c.metrics[metric]["headline"] for c in members])
        tied = [c for c in members if abs(c.metrics[metric]["headline"] - top) <= 1e-12 * max(1.0, abs(top))]
        best = min(tied, key=lambda c: (c.step if c.step is not None else -1, _job_order(Path(c.job))))
        others = [c for c in members if c is not best]
        overlapping = [c for c in others if c not in tied and _overlap(best.metrics[metric], c.metrics[metric])]
        unknown = [c for c in others if c not in tied and _overlap(best.metrics[metric], c.metrics[metric]) is None]
        m = best.metrics[metric]
        ci = f" [{m['ci_low']:.4g}, {m['ci_high']:.4g}]" if m["ci_low"] is not None else " (no CI)"
        word = "lowest" if metric in LOWER_IS_BETTER else "highest"
        text = (f"{describe(best, keys)} has the {word} {metric} on split '{split}' of dataset '{dataset}': "
                f"{top:.4g}{ci}")
        if len(tied) > 1:
            others_tied = ", ".join(describe(c, keys) for c in tied if c is not best)
            text += f"; tied with {others_tied} (earliest step listed first)"
        if overlapping:
            names = ", ".join(describe(c, keys) for c in overlapping)
            text += f"; its CI overlaps those of {names}: not separable from them"
        elif len(others) > len(tied) - 1 and not unknown:
            text += "; no other checkpoint's CI overlaps it"
        if unknown:
            text += f"; no CI to compare with {', '.join(describe(c, keys) for c in unknown)} (fewer than 2 items)"
        most = max((c.metrics[metric].get("n") or 0) for c in members)
        if (m.get("n") or 0) < most:
            text += f"; note: it rests on {m.get('n') or 0} scored items where others have up to {most}"
        picks.append({"metric": metric, "dataset": dataset, "split": split, "best": _ref(best),
                      "value": m, "tied_with": [_ref(c) for c in tied if c is not best],
                      "ci_overlaps": [_ref(c) for c in overlapping], "no_ci": [_ref(c) for c in unknown],
                      "candidates": len(members), "clear_winner": len(tied) == 1 and not overlapping and not unknown,
                      "text": text})
    return picks


def _ref(c: Child) -> Dict[str, Any]:
    return {"job": c.job, "run_dir": c.run_dir, "step": c.step, "checkpoint": c.checkpoint}
