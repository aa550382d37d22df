"""stage=compare a=<judge run> b=<judge run>: check both are scored runs, compare them (evaluate/compare.py),
write comparison.json and a readable comparison.md."""

from pathlib import Path
from typing import Any, Dict

from cosmos_exp import rundir
from cosmos_exp.config import Config, ConfigError
from cosmos_exp.evaluate.compare import compare_runs, render_markdown, scored_ids
from cosmos_exp.plan import Plan
from cosmos_exp.repro.atomic import write_json_atomic, write_text_atomic
from cosmos_exp.sweep.seeds import render_seed_spread, spread_of_run


def plan(cfg: Config) -> Plan:
    a, b = _check(cfg, "a"), _check(cfg, "b")
    ids_a, ids_b = scored_ids(a), scored_ids(b)
    p = Plan(stage="compare")
    p.add_input("judge run a", str(a), len(ids_a))
    p.add_input("judge run b", str(b), len(ids_b))
    p.outputs += [rundir.COMPARISON_JSON, rundir.COMPARISON_MD]
    p.notes.append(f"{len(ids_a & ids_b)} items scored by both runs are paired; differences are b - a")
    return p


def run(cfg: Config, run_dir: Path) -> Dict[str, Any]:
    a, b = _check(cfg, "a"), _check(cfg, "b")
    out = compare_runs(a, b, _boot(cfg))
    # Each side's spread over training seeds, when its run is one seed of a grid over them (sweep/seeds.py).
    out["seed_spread"] = {side: spread_of_run(run, cfg.eval.confidence) for side, run in (("a", a), ("b", b))}
    run_dir = Path(run_dir)
    write_json_atomic(run_dir / rundir.COMPARISON_JSON, out)
    write_text_atomic(run_dir / rundir.COMPARISON_MD, render_markdown(out) + render_seed_spread(out["seed_spread"]))
    return {"comparison": str(run_dir / rundir.COMPARISON_JSON), "paired_items": out["paired_items"],
            "verdicts": {m: v["overall"]["verdict"] for m, v in out["metrics"].items()}}


def _check(cfg: Config, which: str) -> Path:
    """a= / b= are set and are directories (config/validate); here: they hold a finished judge run."""
    path = Path(str(cfg[which]))
    if not rundir.is_scored_run(path):
        raise ConfigError(which, f"{path} is not a finished judge run ({rundir.SUMMARY_JSON} and "
                          f"{rundir.SCORES_DIR}/ expected)", "pass the directory of a stage=judge run")
    return path.resolve()


def _boot(cfg: Config) -> Dict[str, Any]:
    ev = cfg.eval
    return {"samples": int(ev.bootstrap_samples), "confidence": float(ev.confidence), "seed": int(ev.seed)}
