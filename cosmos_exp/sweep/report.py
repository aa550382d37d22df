"""The sweep report: a sweep directory's child runs -> rows, the best pick per metric, report.csv / .md / .json
and one plot per metric. The core of stage=report (stages/report.py)."""

import csv
import io
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from cosmos_exp import rundir
from cosmos_exp.evaluate.headline import SCALED
from cosmos_exp.evaluate.headline import label as metric_label
from cosmos_exp.repro.atomic import write_json_atomic, write_text_atomic
from cosmos_exp.sweep.aggregate import Child, child_dirs, load_child, pick_best, swept_keys
from cosmos_exp.sweep.seeds import group_spreads

log = logging.getLogger("cosmos_exp.report")


def write_report(root: Path, run_dir: Path) -> Dict[str, Any]:
    """Read every child of the sweep directory `root` and write the report files into `run_dir`."""
    children = [load_child(p) for p in child_dirs(root)]
    usable = [c for c in children if not c.problem]
    keys = swept_keys(usable)
    usable.sort(key=lambda c: (tuple(_sort_value(c.overrides.get(k)) for k in keys),
                               c.step if c.step is not None else -1, c.job))
    metrics = sorted({m for c in usable for m in c.metrics})
    confidence = next((c.confidence for c in usable if c.confidence), 0.95)
    sweep = rundir.read_json_optional(root / rundir.SWEEP_JSON)
    never_started = _never_started(sweep, children)
    best = {m: pick_best(usable, m, keys) for m in metrics}
    spreads = group_spreads(usable, keys, metrics, confidence)
    plots = write_plots(usable, metrics, keys, run_dir / rundir.PLOTS_DIR, confidence,
                        {m: _scale(usable, m) for m in metrics})
    rows = [_row(c, keys, metrics) for c in usable]
    write_text_atomic(run_dir / rundir.REPORT_CSV, render_csv(rows, keys, metrics))
    report = {
        "stage": "report", "sweep_dir": str(root), "confidence": confidence, "swept_keys": keys,
        "expanded": (sweep or {}).get("expanded"), "metrics": metrics,
        "children": [_chain(c) for c in usable],
        "incomplete": [{"job": c.job, "run_dir": c.run_dir, "status": c.status, "problem": c.problem}
                       for c in children if c.problem] + never_started,
        "best": best, "seed_spread": spreads, "plots": {m: str(p) for m, p in plots.items()},
        "scales": {m: _scale(usable, m) for m in metrics},
        "higher_is_better": "judge/local 1-5 scores, BLEU (on the scale its column names), accuracies 0-1; lower "
                            "is better for trajectory (minADE, metres)",
    }
    write_text_atomic(run_dir / rundir.REPORT_MD, render_markdown(report, rows, keys, metrics))
    write_json_atomic(run_dir / rundir.REPORT_JSON, report)
    for m in metrics:
        for pick in best[m]:
            log.info("best: %s", pick["text"])
    return {"report": str(run_dir / rundir.REPORT_JSON), "children": len(usable), "incomplete": len(report["incomplete"]),
            "best": {m: [p["best"]["checkpoint"] or p["best"]["run_dir"] for p in picks] for m, picks in best.items()}}


def _scale(children: List[Child], metric: str) -> Optional[str]:
    """The scale of a metric's numbers when it has one (BLEU: 0-100 or 0-1); "mixed" when children differ."""
    scales = {c.metrics[metric].get("scale") for c in children if metric in c.metrics}
    return scales.pop() if len(scales) == 1 else "mixed scales" if scales else None


def _sort_value(value: Optional[str]) -> Tuple[int, float, str]:
    """Numbers in numeric order (8 before 64), then text."""
    try:
        return (0, float(str(value)), "")
    except ValueError:
        return (1, 0.0, str(value))


def _never_started(sweep: Optional[Dict[str, Any]], children: List[Child]) -> List[Dict[str, Any]]:
    """Jobs sweep.json lists that left no run directory (never started, or the sweep was stopped)."""
    seen = {c.job for c in children}
    return [{"job": str(j["num"]), "run_dir": j.get("dir"), "status": "never started",
             "problem": "listed in sweep.json but no run.json"}
            for j in (sweep or {}).get("jobs", []) if str(j.get("num")) not in seen]


def _chain(c: Child) -> Dict[str, Any]:
    return {"job": c.job, "run_dir": c.run_dir, "status": c.status, "stage": c.stage, "checkpoint": c.checkpoint,
            "step": c.step, "role": c.role, "train_run": c.train_run, "dataset": c.dataset, "split": c.split,
            "overrides": c.overrides, "config": c.config, "metrics": c.metrics}


def _row(c: Child, keys: List[str], metrics: List[str]) -> Dict[str, Any]:
    row: Dict[str, Any] = {"job": c.job, "step": c.step, "checkpoint": c.checkpoint, "split": c.split}
    row.update({k: c.overrides.get(k) for k in keys})
    for m in metrics:
        v = c.metrics.get(m, {})
        row.update({m: v.get("headline"), f"{m}_ci_low": v.get("ci_low"), f"{m}_ci_high": v.get("ci_high"),
                    f"{m}_n": v.get("n"), f"{m}_scale": v.get("scale")})
    return row


def render_csv(rows: List[Dict[str, Any]], keys: List[str], metrics: List[str]) -> str:
    columns = ["job", "step", "checkpoint", "split", *keys]
    for m in metrics:
        columns += [m, f"{m}_ci_low", f"{m}_ci_high", f"{m}_n"] + ([f"{m}_scale"] if m in SCALED else [])
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r.get(k) is None else r[k]) for k in columns})  # repr-exact floats
    return buf.getvalue()


def _fmt(v: Any) -> str:
    return "–" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)


def render_markdown(report: Dict[str, Any], rows: List[Dict[str, Any]], keys: List[str], metrics: List[str]) -> str:
    pct = f"{report['confidence'] * 100:g}%"
    lines = [f"# Sweep report: {report['sweep_dir']}", ""]
    if report.get("expanded"):
        lines += [f"Checkpoints of training run `{report['expanded']['train_run']}`.", ""]
    header = ["job", "step", *keys] + [f"{metric_label(m, report['scales'].get(m))} [{pct} CI] (n)" for m in metrics]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [str(r["job"]), _fmt(r["step"]), *[_fmt(r[k]) for k in keys]]
        for m in metrics:
            ci = f" [{_fmt(r[m + '_ci_low'])}, {_fmt(r[m + '_ci_high'])}]" if r[m + "_ci_low"] is not None else ""
            mixed = f" ({r[m + '_scale']})" if report["scales"].get(m) == "mixed scales" and r[m] is not None else ""
            cells.append(f"{_fmt(r[m])}{mixed}{ci} ({_fmt(r[m + '_n'])})")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Best checkpoint per metric", ""]
    for m in metrics:
        for pick in report["best"][m]:
            lines.append(f"- **{m}**: {pick['text']}")
        if not report["best"][m]:
            lines.append(f"- **{m}**: no child has a value")
    if report.get("seed_spread"):
        lines += ["", "## Spread across training seeds", ""]
        for g in report["seed_spread"]:
            where = ", ".join(f"{k}={v}" for k, v in g["settings"].items())
            lines.append(f"- **{g['metric']}**{f' ({where})' if where else ''}: {g['text']}")
    if report["incomplete"]:
        lines += ["", "## Incomplete jobs", ""]
        lines += [f"- job {i['job']} ({i['run_dir']}): {i['problem']}" for i in report["incomplete"]]
    lines += ["", "Higher is better for " + report["higher_is_better"] + "."]  # names the exceptions too
    return "\n".join(lines) + "\n"


def write_plots(children: List[Child], metrics: List[str], keys: List[str], out_dir: Path,
                confidence: float, scales: Optional[Dict[str, Optional[str]]] = None) -> Dict[str, Path]:
    """One PNG per metric: headline against training step, CIs as error bars, a line per other swept setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: Dict[str, Path] = {}
    with_step = [c for c in children if c.step is not None]
    for m in metrics:
        points = [c for c in with_step if c.metrics.get(m, {}).get("headline") is not None]
        if not points:
            continue
        fig, ax = plt.subplots(figsize=(6, 4))
        groups: Dict[Tuple, List[Child]] = {}
        for c in points:  # one line per combination of the other swept values, in numeric order
            groups.setdefault(tuple(_sort_value(c.overrides.get(k)) for k in keys), []).append(c)
        for _, members in sorted(groups.items()):
            members.sort(key=lambda c: c.step)
            label = ", ".join(f"{k}={members[0].overrides.get(k)}" for k in keys) or m
            ys = [c.metrics[m]["headline"] for c in members]
            lows = [c.metrics[m]["ci_low"] for c in members]
            highs = [c.metrics[m]["ci_high"] for c in members]
            lo = [y - (low if low is not None else y) for y, low in zip(ys, lows)]  # no CI (n < 2): no bar
            hi = [(high if high is not None else y) - y for y, high in zip(ys, highs)]
            ax.errorbar([c.step for c in members], ys, yerr=[lo, hi], marker="o", capsize=3, label=label)
        ax.set_xlabel("training step")
        ax.set_ylabel(f"{metric_label(m, (scales or {}).get(m))} (error bars: {confidence * 100:g}% CI)")
        ax.set_title(f"{m} by checkpoint")
        ax.grid(alpha=0.3)
        if len(groups) > 1:
            ax.legend(fontsize=7)
        written[m] = save_figure(fig, out_dir / f"{m}.png")
    return written


def save_figure(fig: Any, path: Path) -> Path:
    """A matplotlib figure as a PNG, written atomically, and closed."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    _write_bytes_atomic(path, buf.getvalue())
    return path


def _write_bytes_atomic(path: Path, data: bytes) -> None:
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
