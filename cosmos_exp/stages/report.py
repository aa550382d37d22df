"""stage=report sweep.dir=<multirun dir>: one table, one plot per metric, and the best checkpoint per metric.

Reads every child run of the sweep (run.json, resolved.yaml, summary.json, evaluate.json) and writes
report.csv + report.md (each metric's headline with its CI per checkpoint step / swept override),
plots/<metric>.png (headline against the training step, CI as error bars, one line per other swept
setting) and report.json: the rows, the best pick per metric on the evaluated split (ties and overlapping
CIs said plainly), and the chain child run -> checkpoint -> training run for every row.
"""

from pathlib import Path
from typing import Any, Dict

from cosmos_exp import rundir
from cosmos_exp.config import Config, ConfigError
from cosmos_exp.plan import Plan
from cosmos_exp.sweep.aggregate import child_dirs, load_child
from cosmos_exp.sweep.report import write_report


def _sweep_dir(cfg: Config) -> Path:
    """sweep.dir is set and is a directory (config/validate); here: it holds the runs of a sweep."""
    root = Path(str(cfg.sweep.dir)).expanduser()
    if not child_dirs(root):
        raise ConfigError("sweep.dir", f"{root} holds no child run directories (<job>/run.json)",
                          "point at a multirun directory whose jobs have started")
    return root.resolve()


def plan(cfg: Config) -> Plan:
    root = _sweep_dir(cfg)
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
    return write_report(_sweep_dir(cfg), Path(run_dir))
