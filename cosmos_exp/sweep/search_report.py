"""stage=report on a search (a sweeper plugin such as Optuna): one row per trial with its searched parameters,
its objective (or why it has none) and its run directories, the best trial, and a plot of the objective against
each searched parameter with the best trial marked. Written beside the sweep report's files:
search.csv, search.md, search.json and plots/objective_vs_<key>.png.

A trial is a job directory <sweep>/<num> with objective.json (sweep/trial.py); its parameters are the values
of the searched keys in the job's .hydra/overrides.yaml, exactly as the sweeper proposed them.
"""

import csv
import io
import math
from pathlib import Path
from typing import Any, Dict, List, Optional

from cosmos_exp import rundir
from cosmos_exp.repro.atomic import write_json_atomic, write_text_atomic

HYDRA_OVERRIDES = ".hydra/overrides.yaml"  # Hydra's own record of a job's overrides


def is_search(sweep: Optional[Dict[str, Any]]) -> bool:
    """A sweep directory of a sweeper that proposed values (sweep/search.py wrote its search space)."""
    return bool((sweep or {}).get("search_space"))


def _job_overrides(job_dir: Path) -> Dict[str, str]:
    import yaml

    try:
        items = yaml.safe_load((job_dir / HYDRA_OVERRIDES).read_text(encoding="utf-8")) or []
    except (OSError, yaml.YAMLError):
        return {}
    return {str(i).split("=", 1)[0].lstrip("+~"): str(i).split("=", 1)[1] for i in items if "=" in str(i)}


def _as_number(text: Optional[str]) -> Any:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return text


def trials(root: Path, keys: List[str]) -> List[Dict[str, Any]]:
    """Every job directory of the search that started, in job order: parameters, objective, status, runs."""
    dirs = sorted((p for p in Path(root).iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))
    rows = []
    for d in dirs:
        record = rundir.read_json_optional(d / rundir.OBJECTIVE_JSON)
        run = rundir.read_run_json(d)
        if record is None and not run:
            continue  # Hydra made the directory but the job never started
        given = _job_overrides(d)
        parts = rundir.read_json_optional(d / rundir.TRAIN_EVAL_JSON) or {}
        status = (record or {}).get("status") or ("running or stopped" if run.get("status") == "running"
                                                  else run.get("status", "unknown"))
        rows.append({"trial": int(d.name), "status": status, "value": (record or {}).get("value"),
                     "params": {k: _as_number(given.get(k)) for k in keys}, "error": (record or {}).get("error"),
                     "run_dir": str(d.resolve()), "train_run": parts.get("sft"), "evaluate_run": parts.get("evaluate"),
                     "checkpoint": parts.get("checkpoint"), "step": parts.get("step")})
    return rows


def best_trial(rows: List[Dict[str, Any]], direction: str) -> Optional[Dict[str, Any]]:
    done = [r for r in rows if r["status"] == "succeeded" and r["value"] is not None]
    if not done:
        return None
    sign = 1 if direction == "minimize" else -1
    return min(done, key=lambda r: (sign * r["value"], r["trial"]))  # ties: the earlier trial


def _optuna_best(root: Path) -> Optional[Dict[str, Any]]:
    """What the Optuna sweeper wrote when the search ended (optimization_results.yaml), if it did."""
    import yaml

    path = Path(root) / rundir.OPTUNA_RESULTS
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, yaml.YAMLError):
        return None


def write_search_report(root: Path, run_dir: Path, sweep: Dict[str, Any]) -> Dict[str, Any]:
    keys = list(sweep["search_space"])
    metric = sweep["objective"]["metric"]
    direction = sweep["objective"]["direction"]
    rows = trials(root, keys)
    best = best_trial(rows, direction)
    plots = write_plots(rows, keys, sweep["search_space"], metric, best, run_dir / rundir.PLOTS_DIR)
    report = {"stage": "report", "kind": "search", "sweep_dir": str(root), "sweeper": sweep.get("sweeper"),
              "search_space": sweep["search_space"], "objective": sweep["objective"], "trials": rows,
              "best": best, "optuna_best": _optuna_best(root), "plots": {k: str(p) for k, p in plots.items()},
              "failed": [r["trial"] for r in rows if r["status"] != "succeeded"]}
    write_text_atomic(run_dir / "search.csv", render_csv(rows, keys, metric))
    write_text_atomic(run_dir / "search.md", render_markdown(report, keys, metric))
    write_json_atomic(run_dir / "search.json", report)
    return {"search": str(run_dir / "search.json"), "trials": len(rows), "failed": len(report["failed"]),
            "best": {"trial": best["trial"], metric: best["value"], "params": best["params"]} if best else None}


def render_csv(rows: List[Dict[str, Any]], keys: List[str], metric: str) -> str:
    columns = ["trial", "status", *keys, metric, "run_dir", "train_run", "evaluate_run", "checkpoint", "error"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        flat = {**r, **r["params"], metric: r["value"]}
        writer.writerow({c: "" if flat.get(c) is None else flat[c] for c in columns})
    return buf.getvalue()


def _fmt(v: Any) -> str:
    return "–" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)


def render_markdown(report: Dict[str, Any], keys: List[str], metric: str) -> str:
    objective = report["objective"]
    lines = [f"# Search report: {report['sweep_dir']}", "",
             f"Sweeper {report['sweeper']}; objective {metric} ({objective['direction']}); search space: "
             + ", ".join(f"`{k}={v}`" for k, v in report["search_space"].items()) + ".", ""]
    header = ["trial", "status", *keys, metric, "run directory"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    best = report["best"]
    for r in report["trials"]:
        mark = " **(best)**" if best and r["trial"] == best["trial"] else ""
        cells = [str(r["trial"]), r["status"], *[_fmt(r["params"].get(k)) for k in keys], _fmt(r["value"]) + mark,
                 r["run_dir"]]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [""]
    if best:
        where = f"; it evaluated {best['checkpoint']}" if best.get("checkpoint") else ""
        lines.append(f"Best: trial {best['trial']} ({', '.join(f'{k}={_fmt(v)}' for k, v in best['params'].items())}) "
                     f"with {metric} {_fmt(best['value'])}{where}.")
    else:
        lines.append("No trial finished with a value.")
    if report["optuna_best"]:
        lines.append(f"Optuna's {rundir.OPTUNA_RESULTS}: best_params {report['optuna_best'].get('best_params')}, "
                     f"best_value {report['optuna_best'].get('best_value')}.")
    failed = [r for r in report["trials"] if r["status"] != "succeeded"]
    if failed:
        lines += ["", "## Trials without a value", ""]
        lines += [f"- trial {r['trial']} ({r['status']}): {r['error'] or 'no objective.json'}" for r in failed]
    return "\n".join(lines) + "\n"


def write_plots(rows: List[Dict[str, Any]], keys: List[str], space: Dict[str, str], metric: str,
                best: Optional[Dict[str, Any]], out_dir: Path) -> Dict[str, Path]:
    """One PNG per searched key: the objective of each finished trial against the key's value (log axis for a
    log-scale search), the best trial as a star."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cosmos_exp.sweep.report import save_figure

    written: Dict[str, Path] = {}
    done = [r for r in rows if r["value"] is not None and r["status"] == "succeeded"]
    for key in keys:
        points = [(r["params"].get(key), r["value"], r) for r in done if isinstance(r["params"].get(key), float)]
        if not points:
            continue
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.scatter([p[0] for p in points], [p[1] for p in points], label="trials")
        for x, y, r in points:
            ax.annotate(str(r["trial"]), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        if best is not None and isinstance(best["params"].get(key), float):
            ax.scatter([best["params"][key]], [best["value"]], marker="*", s=250, color="tab:red", zorder=3,
                       label=f"best (trial {best['trial']})")
        if "log" in space.get(key, "") and all(p[0] > 0 for p in points) and not any(math.isnan(p[0]) for p in points):
            ax.set_xscale("log")
        ax.set_xlabel(key)
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} against {key}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        written[key] = save_figure(fig, out_dir / f"objective_vs_{key.replace('/', '_')}.png")
    return written
