"""eval=trajectory over a run's prediction records (cosmos_exp/infer/trajectory.py, one per clip): the per-clip
score records (scores/<rig>__<scene>.score.json, so stage=compare pairs two runs clip by clip) and the metric's
summary (evaluate/trajectory.summarise: headline minADE of the headline source, per source and rig, CIs).

A score record: {"id", "rig", "scene_id", "metrics": {"trajectory": {"value": the headline source's min_ade,
"sources": {source: evaluate/trajectory's scene record}}}}.
"""

from collections import defaultdict
from typing import Any, Dict, List, Sequence, Tuple

from cosmos_exp.config.trajectory import TrajectoryMetricsConfig
from cosmos_exp.evaluate.trajectory import paired_differences, score_scenes, summarise

METRIC = "trajectory"


def score_predictions(records: Sequence[Dict[str, Any]], sources: Sequence[str], cfg: TrajectoryMetricsConfig,
                      boot: Dict[str, Any], item_id: Any) -> Tuple[Dict[str, Dict[str, Any]], Dict[str, Any]]:
    """(item id -> score record, the summary) of prediction records; item_id(rig, scene) names a clip."""
    by_rig: Dict[str, List[Dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_rig[r["rig"]].append(r)
    scene_records: List[Dict[str, Any]] = []
    for rig, recs in sorted(by_rig.items()):
        truths = {r["scene_id"]: r["truth"] for r in recs}
        predictions = {s: {r["scene_id"]: r[s] for r in recs if s in r} for s in sources}
        scene_records += score_scenes(predictions, truths, cfg, rig=rig)
    items: Dict[str, Dict[str, Any]] = {}
    for rec in scene_records:
        key = item_id(rec["rig"], rec["id"])
        item = items.setdefault(key, {"id": key, "rig": rec["rig"], "scene_id": rec["id"],
                                      "metrics": {METRIC: {"value": None, "sources": {}}}})
        block = item["metrics"][METRIC]
        block["sources"][rec["source"]] = rec
        if rec["source"] == cfg.headline_source and rec.get("status") == "scored":
            block["value"] = rec["min_ade"]
    return items, summarise(scene_records, cfg, boot)


def scene_records_of(items: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The evaluate/trajectory scene records held by score records (what paired_differences reads)."""
    return [rec for item in items for rec in item["metrics"][METRIC]["sources"].values()]


def compare_trajectory(pairs: Sequence[Tuple[Dict[str, Any], Dict[str, Any]]], cfg: TrajectoryMetricsConfig,
                       boot: Dict[str, Any]) -> Dict[str, Any]:
    """stage=compare's block for the trajectory metric, b - a over the clips both runs scored: `overall` on the
    headline minADE (lower is better), a min_ade row per source and rig, and evaluate/trajectory's paired
    differences (every error, per manoeuvre, turns) per source and rig, paired by scene."""
    from cosmos_exp.evaluate.stats import paired_diff_ci

    out: Dict[str, Any] = {"overall": paired_diff_ci([a["value"] for a, _ in pairs], [b["value"] for _, b in pairs],
                                                     **boot, higher_is_better=False),
                           "headline_source": cfg.headline_source, "per_key": {}, "by_source": {}}
    groups: Dict[Tuple[str, str], Tuple[list, list]] = defaultdict(lambda: ([], []))
    for a, b in pairs:
        for side, block in enumerate((a, b)):
            for source, rec in block["sources"].items():
                groups[(source, rec["rig"])][side].append(rec)
    for (source, rig), (ra, rb) in sorted(groups.items()):
        diff = paired_differences(ra, rb, cfg, boot)
        out["by_source"].setdefault(source, {})[rig] = diff
        out["per_key"][f"{source} {rig} min_ade"] = diff["min_ade"]
    return out
