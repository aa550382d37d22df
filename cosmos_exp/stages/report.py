"""stage=report sweep.dir=<multirun dir>: one table, one plot per metric, and the best checkpoint per metric.

Reads every child run of the sweep (run.json, resolved.yaml, summary.json, evaluate.json) and writes
report.csv + report.md (each metric's headline with its CI per checkpoint step / swept override),
plots/<metric>.png (headline against the training step, CI as error bars, one line per other swept
setting) and report.json: the rows, the best pick per metric on the evaluated split (ties and overlapping
CIs said plainly), and the chain child run -> checkpoint -> training run for every row.

A search (a sweeper plugin such as Optuna; its sweep.json holds the search space) gets search.csv / .md /
.json instead: each trial's searched parameters, objective and run directories, the best trial, and
plots/objective_vs_<key>.png (sweep/search_report.py).
"""

from pathlib import Path
from typing import Any, Dict, Optional

from cosmos_exp import rundir
from cosmos_exp.config import Config, ConfigError
from cosmos_exp.plan import Plan
from cosmos_exp.sweep.aggregate import child_dirs, load_child
from cosmos_exp.sweep.report import write_report
from cosmos_exp.sweep.search_report import is_search, trials, write_search_report


def _search(root: Path) -> Optional[Dict[str, Any]]:
    sweep = rundir.read_json_optional(root / rundir.SWEEP_JSON)
    return sweep if is_search(sweep) else None


def _sweep_dir(cfg: Config) -> Path:
    """sweep.dir is set and is a directory (config/validate); here: it holds the runs of a sweep."""
    root = Path(str(cfg.sweep.dir)).expanduser()
    if not child_dirs(root) and not (_search(root) and trials(root, [])):
        raise ConfigError("sweep.dir", f"{root} holds no child run directories (<job>/run.json)",
                          "point at a multirun directory whose jobs have started")
    return root.resolve()


def plan(cfg: Config) -> Plan:
    root = _sweep_dir(cfg)
    search = _search(root)
    if search is not None:
        p = Plan(stage="report")
        p.add_input("search directory (trials)", str(root), len(trials(root, [])))
        p.outputs += ["search.csv", "search.md", "search.json", f"{rundir.PLOTS_DIR}/objective_vs_<key>.png"]
        p.notes.append(f"search over {', '.join(search['search_space'])}; objective {search['objective']['metric']} "
                       f"({search['objective']['direction']})")
        return p
    children = [load_child(p) for p in child_dirs(root)]
    usable = [c for c in children if not c.problem]
    p = Plan(stage="report")
    p.add_input("sweep directory (child runs)", str(root), len(children))
    p.outputs += [rundir.REPORT_CSV, rundir.REPORT_MD, rundir.REPORT_JSON, f"{rundir.PLOTS_DIR}/<metric>.png"]
    metrics = sorted({m for c in usable for m in c.metrics})
    p.notes.append(f"{len(usable)} child run(s) with summary.json; metrics {', '.join(metrics) or 'none'}")
    for c in children:
        if c.problem:
            p.notes.append(f"job {c.job}: {c.problem}; listed as incomplete")
    return p


def run(cfg: Config, run_dir: Path) -> Dict[str, Any]:
    root = _sweep_dir(cfg)
    search = _search(root)
    if search is not None:
        return write_search_report(root, Path(run_dir), search)
    return write_report(root, Path(run_dir))
