"""stage=report on constructed sweeps: the table equals the children's summaries, plots exist, the best pick,
ties and overlapping CIs are right, incomplete jobs are listed, and every row traces back to its training run."""

import csv
import json
from pathlib import Path
from typing import Dict, Optional, Tuple

import pytest

from conftest import run_cli
from cosmos_exp.sweep.aggregate import child_dirs, load_child, pick_best

CI = Tuple[float, float, float]  # mean, low, high


def summary(metrics: Dict[str, CI], split: str = "eval", n: int = 8) -> Dict:
    """A summary.json shaped like evaluate/scoring.py's: each metric keeps its CI where that metric does."""
    blocks = {}
    for m, (mean, lo, hi) in metrics.items():
        ci = {"n": n, "mean": mean, "ci_low": lo, "ci_high": hi}
        field = {"local": "overall", "llm_judge": "overall", "bleu": "corpus", "mcq": "accuracy", "trajectory": "min_ade"}[m]
        if m == "bleu":
            ci = {"score": mean, "n": n, "ci_low": lo, "ci_high": hi}
        blocks[m] = {"headline": mean, field: ci}
    return {"stage": "judge", "checkpoint": None, "items": n, "bootstrap": {"samples": 100, "confidence": 0.95},
            "caption_index": {"dataset": {"name": "synthetic_av", "split": split}}, "metrics": blocks}


def make_child(sweep: Path, job: int, step: Optional[int], metrics: Dict[str, CI], overrides=(), split="eval",
               with_summary=True) -> Path:
    d = sweep / str(job)
    d.mkdir(parents=True)
    ckpt = sweep.parent / "train" / "checkpoints" / f"step_{step}"
    (d / "run.json").write_text(json.dumps({"stage": "evaluate", "status": "succeeded" if with_summary else "failed",
                                            "overrides": ["stage=evaluate", f"model.path={ckpt}", *overrides]}))
    (d / "resolved.yaml").write_text(f"model:\n  path: {ckpt}\n")
    if with_summary:
        s = summary(metrics, split)
        s["checkpoint"] = str(ckpt)
        (d / "summary.json").write_text(json.dumps(s))
        (d / "evaluate.json").write_text(json.dumps({"checkpoint": str(ckpt), "step": step, "split": split,
                                                     "dataset": "synthetic_av", "train_run": str(ckpt.parent.parent)}))
    return d


@pytest.fixture
def sweep(tmp_path) -> Path:
    root = tmp_path / "multirun"
    make_child(root, 0, 100, {"local": (2.0, 1.8, 2.2), "bleu": (5.0, 3.0, 7.0), "mcq": (0.5, 0.3, 0.7)})
    make_child(root, 1, 200, {"local": (3.0, 2.9, 3.1), "bleu": (20.0, 15.0, 25.0), "mcq": (0.5, 0.3, 0.7)})
    make_child(root, 2, 300, {"local": (4.0, 3.9, 4.1), "bleu": (18.0, 14.0, 22.0), "mcq": (0.25, 0.1, 0.4)})
    make_child(root, 3, 400, {}, with_summary=False)  # a failed job
    (root / "sweep.json").write_text(json.dumps({"expanded": {"train_run": str(tmp_path / "train")},
                                                 "jobs": [{"num": i, "dir": str(root / str(i))} for i in range(5)]}))
    return root


def test_best_pick_ties_and_overlapping_cis(sweep):
    children = [c for c in (load_child(p) for p in child_dirs(sweep)) if not c.problem]
    local = pick_best(children, "local")[0]
    assert local["best"]["step"] == 300 and local["clear_winner"] and local["split"] == "eval"
    assert "no other checkpoint's CI overlaps" in local["text"]
    bleu = pick_best(children, "bleu")[0]
    assert bleu["best"]["step"] == 200 and not bleu["clear_winner"]
    assert [r["step"] for r in bleu["ci_overlaps"]] == [300] and "not separable" in bleu["text"]
    mcq = pick_best(children, "mcq")[0]
    assert mcq["best"]["step"] == 100 and [r["step"] for r in mcq["tied_with"]] == [200]
    assert "tied with step_200" in mcq["text"]


def test_a_best_pick_on_fewer_items_says_so(tmp_path):
    root = tmp_path / "m"
    make_child(root, 0, 1, {"local": (2.0, 1.5, 2.5)})
    d = make_child(root, 1, 2, {"local": (4.0, 3.0, 5.0)})
    s = json.loads((d / "summary.json").read_text())
    s["metrics"]["local"]["overall"]["n"] = 3  # e.g. only 3 captions parsed as JSON
    (d / "summary.json").write_text(json.dumps(s))
    pick = pick_best([load_child(p) for p in child_dirs(root)], "local")[0]
    assert pick["best"]["step"] == 2 and "rests on 3 scored items where others have up to 8" in pick["text"]


def test_best_is_picked_per_split(tmp_path):
    root = tmp_path / "m"
    make_child(root, 0, 1, {"local": (2.0, 1.0, 3.0)}, split="eval")
    make_child(root, 1, 2, {"local": (1.0, 0.5, 1.5)}, split="eval")
    make_child(root, 2, 1, {"local": (1.0, 0.5, 1.5)}, split="test")
    make_child(root, 3, 2, {"local": (3.0, 2.5, 3.5)}, split="test")
    picks = {p["split"]: p["best"]["step"] for p in pick_best([load_child(p) for p in child_dirs(root)], "local")}
    assert picks == {"eval": 1, "test": 2}


def test_report_stage_table_plots_and_chain(sweep, tmp_path):
    out = tmp_path / "report"
    proc = run_cli(["stage=report", f"sweep.dir={sweep}", f"paths.root={tmp_path}/o", f"hydra.run.dir={out}"],
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out / "report.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["job"] for r in rows] == ["0", "1", "2"]
    for r in rows:
        s = json.loads((sweep / r["job"] / "summary.json").read_text())
        assert float(r["local"]) == s["metrics"]["local"]["headline"]
        assert float(r["local_ci_low"]) == s["metrics"]["local"]["overall"]["ci_low"]
        assert float(r["bleu_ci_high"]) == s["metrics"]["bleu"]["corpus"]["ci_high"]
        assert float(r["mcq"]) == s["metrics"]["mcq"]["accuracy"]["mean"]
        assert int(r["step"]) == json.loads((sweep / r["job"] / "evaluate.json").read_text())["step"]
    for m in ("local", "bleu", "mcq"):
        assert (out / "plots" / f"{m}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((out / "report.json").read_text())
    assert report["best"]["local"][0]["best"]["step"] == 300
    chain = {c["job"]: c for c in report["children"]}
    assert chain["1"]["checkpoint"].endswith("train/checkpoints/step_200")
    assert chain["1"]["train_run"] == str(tmp_path / "train") and chain["1"]["run_dir"] == str(sweep / "1")
    incomplete = {i["job"]: i["problem"] for i in report["incomplete"]}
    assert "summary.json" in incomplete["3"] and "no run.json" in incomplete["4"]
    md = (out / "report.md").read_text()
    assert "| 1 | 200 |" in md and "20 [15, 25] (8)" in md and "not separable" in md
    # BLEU's number carries its scale (a summary without one was on sacrebleu's 0-100): column and csv.
    assert "bleu (0-100) [95% CI] (n)" in md and "mcq [95% CI] (n)" in md
    assert [r["bleu_scale"] for r in rows] == ["0-100"] * 3 and report["scales"]["bleu"] == "0-100"


def test_swept_override_gets_a_column_and_a_line(tmp_path):
    root = tmp_path / "m"
    for job, (step, tokens, mean) in enumerate([(1, 8, 1.0), (2, 8, 2.0), (1, 64, 1.5), (2, 64, 3.0)]):
        make_child(root, job, step, {"local": (mean, mean - 0.1, mean + 0.1)},
                   overrides=[f"generation.max_new_tokens={tokens}"])
    out = tmp_path / "r"
    proc = run_cli(["stage=report", f"sweep.dir={root}", f"paths.root={tmp_path}/o", f"hydra.run.dir={out}"],
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["swept_keys"] == ["generation.max_new_tokens"]
    best = report["best"]["local"][0]["best"]
    assert best["step"] == 2 and best["job"] == "3"
    assert report["best"]["local"][0]["text"].startswith("step_2 [generation.max_new_tokens=64] (job 3) has")
    with open(out / "report.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["generation.max_new_tokens"], r["step"]) for r in rows] == [("8", "1"), ("8", "2"), ("64", "1"),
                                                                          ("64", "2")]


def test_report_needs_a_sweep_dir_with_children(tmp_path):
    proc = run_cli(["stage=report", f"paths.root={tmp_path}/o"], cwd=tmp_path)
    assert proc.returncode == 2 and "sweep.dir" in proc.stderr
    (tmp_path / "empty").mkdir()
    proc = run_cli(["stage=report", f"sweep.dir={tmp_path}/empty", f"paths.root={tmp_path}/o"], cwd=tmp_path)
    assert proc.returncode == 2 and "no child run" in proc.stderr


def test_the_best_trajectory_checkpoint_has_the_lowest_min_ade(tmp_path):
    """minADE is an error: a sweep over trajectory evaluations picks the smallest, and says "lowest"."""
    root = tmp_path / "m"
    make_child(root, 0, 1, {"trajectory": (3.0, 2.8, 3.2)})
    make_child(root, 1, 2, {"trajectory": (1.0, 0.9, 1.1)})
    make_child(root, 2, 3, {"trajectory": (2.0, 1.9, 2.1)})
    pick = pick_best([load_child(p) for p in child_dirs(root)], "trajectory")[0]
    assert pick["best"]["step"] == 2 and "lowest trajectory" in pick["text"] and pick["clear_winner"]


def test_bleu_on_two_scales_is_never_one_column_of_bare_numbers(tmp_path):
    from cosmos_exp.sweep.report import write_report

    root = tmp_path / "m"
    make_child(root, 0, 1, {"bleu": (11.3, 10.0, 12.0)})
    d = make_child(root, 1, 2, {"bleu": (0.125, 0.11, 0.14)})
    s = json.loads((d / "summary.json").read_text())
    s["metrics"]["bleu"]["scale"] = "0-1"
    (d / "summary.json").write_text(json.dumps(s))
    write_report(root, tmp_path / "out")
    md = (tmp_path / "out" / "report.md").read_text()
    assert "bleu (mixed scales) [95% CI] (n)" in md
    assert "11.3 (0-100) [10, 12] (8)" in md and "0.125 (0-1) [0.11, 0.14] (8)" in md
