"""eval=trajectory: open-loop trajectory metrics per scene, their summary with bootstrap CIs per source and rig,
and paired differences on the same scenes (rig b minus rig a, tokens minus expert, run b minus run a).

Frame and units: the ego pose at t0 (x forward, y left, yaw counter-clockwise, cosmos_exp/trajectory/action_space),
metres, seconds; yaws are reported in degrees. Inputs are plain arrays:
  predictions {source: {scene id: K x T x 2 xy, or {"xy": K x T x 2, "yaw": K x T}}}: source "expert" holds the
    flow-matching head's K samples, "tokens" the backbone's discrete-token decode (often K = 1);
  truths {scene id: T x 2 xy, or {"xy": T x 2, "yaw": T, "manoeuvre": "straight" | "left" | "right"}}.
Yaws, where not given, come from the direction of the last step that moved.

Per scene (the reference's open-loop names where it has them):
  min_ade: the least over the first k samples of the mean displacement over all T waypoints; ade: sample 0's;
  min_fde / fde: the same at the last waypoint;
  min_ade_first_{t}s / ade_first_{t}s: ADE over the waypoints up to t seconds (the reference's min_ade/by_t),
    not the displacement at t, which is displacement_at_{t}s (sample 0);
  manoeuvre: the ground truth's class from its final yaw (turn threshold in the config) unless labelled;
  bias metrics over all k samples of the scene (the share or mean over samples): pred_straight_rate,
    turn_recall (the right turn direction over the threshold) and wrong_direction_rate on turns,
    false_turn_rate on straights; lateral_error_at_horizon = predicted minus true y at the last waypoint,
    lateral_error_toward_turn = the same signed towards the true turn (negative: under-turned);
    abs_pred_final_yaw_deg against |true_final_yaw_deg| for abs_yaw_ratio, a ratio of means over turns.
"""

import dataclasses
import math
from collections import Counter
from typing import Any, Dict, Iterable, List, Optional, Sequence

import numpy as np
import torch

from cosmos_exp.config.trajectory import TrajectoryMetricsConfig
from cosmos_exp.evaluate.stats import mean_ci, paired_diff_ci, paired_ratio_diff_ci, ratio_ci
from cosmos_exp.trajectory.action_space import LEFT, MANOEUVRES, RIGHT, STRAIGHT, final_yaw, manoeuvre_of
BASE_ERRORS = ("min_ade", "ade", "min_fde", "fde")
LATERAL = ("lateral_error_at_horizon", "abs_lateral_error_at_horizon")
TURN_RATES = ("turn_recall", "pred_straight_rate", "wrong_direction_rate")
# Direction of "better" for paired verdicts; None: no better direction (signed errors).
HIGHER_IS_BETTER = {"turn_recall": True, "lateral_error_at_horizon": None, "lateral_error_toward_turn": None}


def horizon_keys(cfg: TrajectoryMetricsConfig) -> List[str]:
    return [f"{prefix}_{t:g}s" for t in cfg.horizons_s for prefix in ("min_ade_first", "ade_first", "displacement_at")]


def error_keys(cfg: TrajectoryMetricsConfig) -> List[str]:
    return list(BASE_ERRORS) + horizon_keys(cfg)


def scene_metrics(pred_xy: Any, true_xy: Any, cfg: TrajectoryMetricsConfig, pred_yaw: Any = None,
                  true_yaw: Any = None, label: Optional[str] = None, scene: str = "?") -> Dict[str, Any]:
    """The metrics of one scene: pred K x T x 2 (or T x 2 for one sample), truth T x 2."""
    pred = np.asarray(pred_xy, dtype=float)
    pred = pred[None] if pred.ndim == 2 else pred
    truth = np.asarray(true_xy, dtype=float)
    if truth.ndim != 2 or truth.shape[1] != 2 or pred.ndim != 3 or pred.shape[1:] != truth.shape or not len(pred):
        raise ValueError(f"scene {scene}: predictions must be K x T x 2 and the truth T x 2 with the same T "
                         f"(got {pred.shape} and {truth.shape})")
    k = min(int(cfg.k), len(pred))
    pred = pred[:k]
    err = np.linalg.norm(pred - truth, axis=-1)  # k x T
    out: Dict[str, Any] = {"k": k, "min_ade": float(err.mean(1).min()), "ade": float(err[0].mean()),
                           "min_fde": float(err[:, -1].min()), "fde": float(err[0, -1])}
    for t in cfg.horizons_s:
        n = _steps(t, cfg.dt, truth.shape[0], scene)
        out[f"min_ade_first_{t:g}s"] = float(err[:, :n].mean(1).min())
        out[f"ade_first_{t:g}s"] = float(err[0, :n].mean())
        out[f"displacement_at_{t:g}s"] = float(err[0, n - 1])

    true_final = _final_yaw_deg(truth, _yaws(true_yaw, 1, truth.shape[0], scene))
    pred_final = np.atleast_1d(_final_yaw_deg(pred, _yaws(pred_yaw, k, truth.shape[0], scene)))
    truth_class = _classify(true_final, cfg.turn_threshold_deg)
    if label is not None and label not in MANOEUVRES:
        raise ValueError(f"scene {scene}: manoeuvre label {label!r} is not one of {', '.join(MANOEUVRES)}")
    cls = label or truth_class
    pred_classes = [_classify(y, cfg.turn_threshold_deg) for y in pred_final]
    lateral = pred[:, -1, 1] - truth[-1, 1]
    turn = cls != STRAIGHT

    def share(which: str) -> float:
        return float(np.mean([c == which for c in pred_classes]))

    out.update({
        "manoeuvre": cls, "manoeuvre_from": "label" if label else "final_yaw",
        "true_final_yaw_deg": float(true_final), "pred_final_yaw_deg": [float(y) for y in pred_final],
        "abs_pred_final_yaw_deg": float(np.abs(pred_final).mean()), "pred_manoeuvres": pred_classes,
        "lateral_error_at_horizon": float(lateral.mean()), "abs_lateral_error_at_horizon": float(np.abs(lateral).mean()),
        "lateral_error_toward_turn": float((lateral * (1 if cls == LEFT else -1)).mean()) if turn else None,
        "turn_recall": share(cls) if turn else None,
        "pred_straight_rate": share(STRAIGHT) if turn else None,
        "wrong_direction_rate": share(RIGHT if cls == LEFT else LEFT) if turn else None,
        "false_turn_rate": 1.0 - share(STRAIGHT) if not turn else None,
    })
    return out


def score_scenes(predictions: Dict[str, Dict[str, Any]], truths: Dict[str, Any], cfg: TrajectoryMetricsConfig,
                 rig: str = "default") -> List[Dict[str, Any]]:
    """One record per source and ground-truth scene; a scene a source did not predict is recorded as missing."""
    records = []
    for source, preds in sorted(predictions.items()):
        unknown = sorted(set(preds) - set(truths))
        if unknown:
            raise ValueError(f"source {source}: {len(unknown)} predicted scene(s) have no ground truth, e.g. "
                             f"{unknown[0]!r}; score predictions against the scenes they were made for")
        for scene in sorted(truths):
            rec: Dict[str, Any] = {"id": scene, "source": source, "rig": rig}
            if scene not in preds:
                records.append({**rec, "status": "missing_prediction"})
                continue
            p, t = _fields(preds[scene]), _fields(truths[scene])
            records.append({**rec, "status": "scored", **scene_metrics(p["xy"], t["xy"], cfg, p.get("yaw"), t.get("yaw"),
                                                                        t.get("manoeuvre"), scene)})
    return records


def summarise(records: Sequence[Dict[str, Any]], cfg: TrajectoryMetricsConfig, boot: Dict[str, Any]) -> Dict[str, Any]:
    """The metric's summary: per source, all records (rigs pooled) and per rig, with bootstrap CIs over scenes;
    rig differences against the baseline rig and source differences against the headline source, both on the
    same scenes. The headline is the headline source's minADE over all its records."""
    sources = sorted({r["source"] for r in records})
    rigs = sorted({r["rig"] for r in records})
    per_source = {s: {"all": _block(_select(records, s), cfg, boot),
                      "per_rig": {g: _block(_select(records, s, g), cfg, boot) for g in rigs}} for s in sources}
    head = cfg.headline_source if cfg.headline_source in sources else (sources[0] if sources else None)
    out: Dict[str, Any] = {
        "headline": per_source[head]["all"]["min_ade"]["mean"] if head else None,
        "headline_metric": "min_ade", "headline_source": head,
        "min_ade": per_source[head]["all"]["min_ade"] if head else mean_ci([]),
        "units": "metres, seconds; yaws in degrees", "settings": dataclasses.asdict(cfg), "sources": per_source,
    }
    if len(rigs) > 1:
        base = cfg.baseline_rig or rigs[0]
        if base not in rigs:
            raise ValueError(f"baseline_rig {base!r} scored no scene (rigs: {', '.join(rigs)}); set it to one of them")
        out["rig_differences"] = {s: {f"{g} - {base}": paired_differences(_select(records, s, base),
                                                                          _select(records, s, g), cfg, boot)
                                      for g in rigs if g != base} for s in sources}
    if head and len(sources) > 1:
        out["source_differences"] = {f"{s} - {head}": {g: paired_differences(_select(records, head, g),
                                                                           _select(records, s, g), cfg, boot)
                                                       for g in rigs} for s in sources if s != head}
    out["note"] = ("min_ade over the first k samples, ade/fde/displacement_at of sample 0; ade_first_{t}s is the "
                   "mean over the first t seconds, displacement_at_{t}s the error at t; bias rates average the "
                   "k samples of a scene; abs_yaw_ratio is a ratio of means over turns (1: turns as far as the "
                   "truth, under 1: a straight bias); differences are b - a on scenes both sides scored")
    return out


def paired_differences(a: Iterable[Dict[str, Any]], b: Iterable[Dict[str, Any]], cfg: TrajectoryMetricsConfig,
                       boot: Dict[str, Any]) -> Dict[str, Any]:
    """b - a on the scenes both scored, paired by scene id, with bootstrap CIs resampling those scenes; the
    manoeuvre split follows a's ground truth."""
    ra, rb = _by_scene(a, "a"), _by_scene(b, "b")
    ids = sorted(set(ra) & set(rb))

    def diff(key: str, scenes: List[str]) -> Dict[str, Any]:
        return paired_diff_ci([ra[i][key] for i in scenes], [rb[i][key] for i in scenes], **boot,
                              higher_is_better=HIGHER_IS_BETTER.get(key, False))

    out: Dict[str, Any] = {"difference": "b - a", "paired_scenes": len(ids), "only_in_a": len(set(ra) - set(rb)),
                           "only_in_b": len(set(rb) - set(ra)),
                           "manoeuvre_mismatch": sum(ra[i]["manoeuvre"] != rb[i]["manoeuvre"] for i in ids)}
    out.update({key: diff(key, ids) for key in error_keys(cfg)})
    out["per_manoeuvre"] = {}
    for m in MANOEUVRES:
        scenes = [i for i in ids if ra[i]["manoeuvre"] == m]
        if scenes:
            out["per_manoeuvre"][m] = {"n": len(scenes), **{key: diff(key, scenes) for key in _class_keys(m)}}
    turns = [i for i in ids if ra[i]["manoeuvre"] != STRAIGHT]
    num_den = [col for r in (ra, rb) for col in _yaw_ratio_columns([r[i] for i in turns])]
    out["turns"] = {"n": len(turns), "abs_yaw_ratio": paired_ratio_diff_ci(*num_den, **boot),
                    **{key: diff(key, turns) for key in _turn_keys()}}
    return out


def _by_scene(records: Iterable[Dict[str, Any]], side: str) -> Dict[str, Dict[str, Any]]:
    out: Dict[str, Dict[str, Any]] = {}
    for r in records:
        if r.get("status") != "scored":
            continue
        if r["id"] in out:
            raise ValueError(f"scene {r['id']} appears twice on side {side}; pair one source's records of one rig "
                             f"(or one run) per side")
        out[r["id"]] = r
    return out


def _yaw_ratio_columns(turns: List[Dict[str, Any]]):
    """abs_yaw_ratio's numerator and denominator per turn scene: |predicted| (mean over samples) and |true| final yaw."""
    return [r["abs_pred_final_yaw_deg"] for r in turns], [abs(r["true_final_yaw_deg"]) for r in turns]


def _block(records: List[Dict[str, Any]], cfg: TrajectoryMetricsConfig, boot: Dict[str, Any]) -> Dict[str, Any]:
    scored = [r for r in records if r["status"] == "scored"]
    out: Dict[str, Any] = {"scenes": len(scored), "missing_prediction": len(records) - len(scored),
                           "k": dict(Counter(str(r["k"]) for r in scored)),
                           **{key: mean_ci([r[key] for r in scored], **boot) for key in error_keys(cfg)}}
    out["per_manoeuvre"] = {}
    for m in MANOEUVRES:
        recs = [r for r in scored if r["manoeuvre"] == m]
        if recs:
            out["per_manoeuvre"][m] = {"n": len(recs), **{key: mean_ci([r[key] for r in recs], **boot)
                                                          for key in _class_keys(m)}}
    turns = [r for r in scored if r["manoeuvre"] != STRAIGHT]
    num, den = _yaw_ratio_columns(turns)
    out["turns"] = {"n": len(turns),
                    "abs_yaw_ratio": {**ratio_ci(num, den, **boot),
                                      "mean_abs_pred_final_yaw_deg": float(np.mean(num)) if turns else None,
                                      "mean_abs_true_final_yaw_deg": float(np.mean(den)) if turns else None},
                    **{key: mean_ci([r[key] for r in turns], **boot) for key in _turn_keys()}}
    return out


def _class_keys(manoeuvre: str) -> List[str]:
    rates = ["false_turn_rate"] if manoeuvre == STRAIGHT else list(TURN_RATES) + ["lateral_error_toward_turn"]
    return list(BASE_ERRORS) + list(LATERAL) + rates


def _turn_keys() -> List[str]:
    return list(TURN_RATES) + ["lateral_error_toward_turn", "abs_lateral_error_at_horizon", "min_ade", "ade", "fde"]


def _select(records: Sequence[Dict[str, Any]], source: str, rig: Optional[str] = None) -> List[Dict[str, Any]]:
    return [r for r in records if r["source"] == source and (rig is None or r["rig"] == rig)]


def _fields(item: Any) -> Dict[str, Any]:
    return dict(item) if isinstance(item, dict) else {"xy": item}


def _steps(t: float, dt: float, n: int, scene: str) -> int:
    steps = int(round(t / dt))
    if steps < 1 or steps > n or not math.isclose(steps * dt, t, rel_tol=1e-6, abs_tol=1e-9):
        raise ValueError(f"scene {scene}: horizon {t:g} s is not a waypoint of a {n}-step trajectory at dt {dt}; "
                         f"choose horizons_s among multiples of dt up to {n * dt:g} s")
    return steps


def _yaws(yaw: Any, k: int, t: int, scene: str) -> Optional[np.ndarray]:
    """Given yaws as k x T (T for one trajectory), or None."""
    if yaw is None:
        return None
    y = np.asarray(yaw, dtype=float)
    rows = y[None] if y.ndim == 1 else y
    if rows.ndim != 2 or rows.shape[1] != t or len(rows) < k:
        raise ValueError(f"scene {scene}: yaws must be one per waypoint ({t}) for each trajectory, got {y.shape}")
    return rows[:k] if y.ndim == 2 else y


def _final_yaw_deg(xy: np.ndarray, yaw: Optional[Any]) -> np.ndarray:
    y = None if yaw is None else torch.as_tensor(np.asarray(yaw, dtype=float))
    return np.degrees(final_yaw(torch.as_tensor(xy), y).numpy())


def _classify(final_yaw_deg: float, threshold_deg: float) -> str:
    return manoeuvre_of(math.radians(float(final_yaw_deg)), threshold_deg)
