"""Paired comparison of two scored runs (b - a): per metric and per key, with bootstrap CIs over the items both
runs scored, and a verdict per row. The core of stage=compare (stages/compare.py); pure reads, no writes."""

from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from cosmos_exp import rundir
from cosmos_exp.config.trajectory import TrajectoryMetricsConfig
from cosmos_exp.evaluate.headline import label, scale_of
from cosmos_exp.evaluate.trajectory_scores import METRIC as TRAJECTORY
from cosmos_exp.evaluate.trajectory_scores import compare_trajectory

PER_KEY_METRICS = ("llm_judge", "local")


def compare_runs(a_dir: Path, b_dir: Path, boot: Dict[str, Any]) -> Dict[str, Any]:
    """comparison.json's content for judge (or evaluate) runs a and b."""
    a, b = _load(a_dir), _load(b_dir)
    sa, sb = rundir.read_json(a_dir / rundir.SUMMARY_JSON), rundir.read_json(b_dir / rundir.SUMMARY_JSON)
    ids = sorted(set(a) & set(b))
    metrics: Dict[str, Any] = {}
    warnings: List[str] = []
    for m in sorted(set(sa.get("metrics", {})) & set(sb.get("metrics", {}))):
        ja, jb = (sa["metrics"][m].get("judge") or {}), (sb["metrics"][m].get("judge") or {})
        for field in ("model", "rubric_sha256", "temperature"):
            if ja.get(field) != jb.get(field):
                warnings.append(f"{m}: judge {field} differs ({ja.get(field)} vs {jb.get(field)}); scores are not comparable")
        ra, rb = sa["metrics"][m].get("reference_text"), sb["metrics"][m].get("reference_text")
        if ra != rb:
            warnings.append(f"{m}: reference text differs ({ra} vs {rb}); scores are not comparable")
        pairs = [(a[i]["metrics"][m], b[i]["metrics"][m]) for i in ids if m in a[i]["metrics"] and m in b[i]["metrics"]]
        if not pairs:
            continue
        if m == TRAJECTORY:  # per-scene records, lower is better: paired by scene per source and rig
            settings = sa["metrics"][m].get("settings") or {}
            if settings != (sb["metrics"][m].get("settings") or {}):
                warnings.append(f"{m}: metric settings differ between the runs; a's are used")
            metrics[m] = compare_trajectory(pairs, TrajectoryMetricsConfig(**settings), boot)
            continue
        scale_a, scale_b = scale_of(m, sa["metrics"][m]), scale_of(m, sb["metrics"][m])
        if scale_a != scale_b:
            warnings.append(f"{m}: scale differs ({scale_a} vs {scale_b}); a's is used for the corpus difference")
        metrics[m] = compare_metric(m, pairs, boot, scale_a)
    if not metrics:
        warnings.append("the two runs share no scored items for any metric")
    out = {"stage": "compare", "a": {"run": str(a_dir), "captions_run": sa.get("captions_run"), "checkpoint": sa.get("checkpoint")},
           "b": {"run": str(b_dir), "captions_run": sb.get("captions_run"), "checkpoint": sb.get("checkpoint")},
           "paired_items": len(ids), "only_in_a": len(set(a) - set(b)), "only_in_b": len(set(b) - set(a)),
           "bootstrap": boot, "difference": "b - a", "metrics": metrics, "warnings": warnings}
    return out


def scored_ids(run: Path) -> set:
    return set(rundir.score_files(run))


def _load(run: Path) -> Dict[str, Dict[str, Any]]:
    return {item_id: rundir.read_json(p) for item_id, p in rundir.score_files(run).items()}


def compare_metric(metric: str, pairs: List[Tuple[dict, dict]], boot: Dict[str, Any],
                   scale: Optional[str] = None) -> Dict[str, Any]:
    """b - a of one metric; `scale` is the metric's scale where it has one (BLEU), given with every number."""
    from cosmos_exp.evaluate.stats import paired_diff_ci

    # MCQ: the questions of one video are correlated, so the paired bootstrap resamples videos (a's video of each
    # question; score files written before records named their video fall back to one group per question).
    groups = [p[0].get("video") or f"item:{i}" for i, p in enumerate(pairs)] if metric == "mcq" else None
    out: Dict[str, Any] = {"overall": paired_diff_ci([p[0]["value"] for p in pairs], [p[1]["value"] for p in pairs],
                                                     **boot, groups=groups)}
    if groups is not None:
        out["resampled"] = "videos"
    if any("value_missing_as_min" in p[0] for p in pairs):
        # Keys an unparsable caption lacks count as 1: a base model that never emits JSON still pairs up.
        out["overall_missing_as_min"] = paired_diff_ci([p[0].get("value_missing_as_min") for p in pairs],
                                                       [p[1].get("value_missing_as_min") for p in pairs], **boot)
    if metric in PER_KEY_METRICS:
        keys = sorted(set(pairs[0][0].get("keys", {})) & set(pairs[0][1].get("keys", {})))
        out["per_key"] = {k: paired_diff_ci([_key_score(p[0], k) for p in pairs], [_key_score(p[1], k) for p in pairs], **boot)
                          for k in keys}
    if metric == "bleu":
        out["corpus"] = _paired_corpus_bleu(pairs, boot, scale or "0-100")
    if scale:
        out["scale"] = scale
    return out


def _key_score(rec: dict, key: str):
    e = rec.get("keys", {}).get(key) or {}
    return e.get("score") if e.get("status") == "scored" else None


def _paired_corpus_bleu(pairs, boot, scale: str) -> Dict[str, Any]:
    """Corpus BLEU of b minus a on `scale`, resampling the same items for both (the paired bootstrap)."""
    from cosmos_exp.evaluate.bleu import score_from_stats
    from cosmos_exp.evaluate.stats import statistic_ci, verdict

    usable = [(x["stats"], y["stats"]) for x, y in pairs if x.get("stats") and y.get("stats")]
    if not usable:
        return {"n": 0}
    sa, sb = np.asarray([u[0] for u in usable]), np.asarray([u[1] for u in usable])
    a_score, b_score = score_from_stats(sa, scale), score_from_stats(sb, scale)
    lo, hi = statistic_ci(len(usable), lambda idx: score_from_stats(sb[idx], scale) - score_from_stats(sa[idx], scale),
                          **boot)
    return {"n": len(usable), "a": a_score, "b": b_score, "diff": b_score - a_score, "ci_low": lo, "ci_high": hi,
            "verdict": verdict(lo, hi)}


def render_markdown(out: Dict[str, Any]) -> str:
    conf = int(round(100 * out["bootstrap"]["confidence"]))
    lines = [f"# b - a: {out['b']['run']} vs {out['a']['run']}", "",
             f"a checkpoint: {out['a']['checkpoint']}  ", f"b checkpoint: {out['b']['checkpoint']}  ",
             f"paired items: {out['paired_items']}", "",
             f"| metric | key | n | mean a | mean b | diff | {conf}% CI | verdict |", "|---|---|---|---|---|---|---|---|"]

    def row(m: str, k: str, d: Dict[str, Any]) -> None:
        f = lambda v: "-" if v is None else f"{v:.4g}"
        lines.append(f"| {m} | {k} | {d['n']} | {f(d.get('mean_a'))} | {f(d.get('mean_b'))} | {f(d['mean'])} | "
                     f"[{f(d['ci_low'])}, {f(d['ci_high'])}] | {d['verdict']} |")

    unpaired: List[str] = []  # per-key rows with no item scored on both sides: one line under the table
    for metric, v in out["metrics"].items():
        m = label(metric, v.get("scale"))
        row(m, "overall", v["overall"])
        if "overall_missing_as_min" in v:
            row(m, "overall (missing keys = 1)", v["overall_missing_as_min"])
        if "corpus" in v and v["corpus"].get("n"):
            c = v["corpus"]
            row(m, "corpus", {"n": c["n"], "mean_a": c["a"], "mean_b": c["b"], "mean": c["diff"], "ci_low": c["ci_low"],
                              "ci_high": c["ci_high"], "verdict": c["verdict"]})
        for k, d in v.get("per_key", {}).items():
            if d["n"]:
                row(m, k, d)
            else:
                unpaired.append(f"{metric}/{k}")
    if unpaired:
        lines += ["", f"not compared, no item scored on both sides (an answer that did not parse has no keys): "
                      f"{', '.join(unpaired)}"]
    lines += [""] + [f"warning: {w}" for w in out["warnings"]]
    return "\n".join(lines) + "\n"


