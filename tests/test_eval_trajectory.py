"""Trajectory metrics on hand-made trajectories: displacement errors, the manoeuvre bias metrics, the summary
with bootstrap CIs, and paired rig differences that see a straight bias and no difference where there is none."""

import json
import math

import numpy as np
import pytest
import torch

from cosmos_exp.config.trajectory import TrajectoryMetricsConfig
from cosmos_exp.evaluate.stats import paired_ratio_diff_ci, ratio_ci, verdict
from cosmos_exp.evaluate.trajectory import paired_differences, scene_metrics, score_scenes, summarise
from cosmos_exp.trajectory.action_space import integrate

CFG = TrajectoryMetricsConfig()
BOOT = {"samples": 1000, "confidence": 0.95, "seed": 0}
T = 64


def _traj(kappa: float, v: float = 10.0, accel: float = 0.0):
    """xy (T x 2) and yaw (T) of constant acceleration and curvature from speed v."""
    acts = torch.tensor([[accel, kappa]] * T, dtype=torch.float64)
    roll = integrate(acts, v, 0.1)
    return roll.xy.numpy(), roll.yaw.numpy()


LEFT_XY, LEFT_YAW = _traj(0.02)  # 1.28 rad = 73 degrees
RIGHT_XY, RIGHT_YAW = _traj(-0.02)
STRAIGHT_XY, _ = _traj(0.0, accel=0.5)
TRUTHS = {"l": {"xy": LEFT_XY, "yaw": LEFT_YAW}, "r": {"xy": RIGHT_XY}, "s": STRAIGHT_XY}


def _score(pred: dict, truths=TRUTHS, rig="A"):
    return {r["id"]: r for r in score_scenes({"expert": pred}, truths, CFG, rig)}


def test_perfect_predictor_has_zero_errors_and_full_recall():
    recs = _score({"l": LEFT_XY[None], "r": RIGHT_XY[None], "s": STRAIGHT_XY[None]})
    assert [recs[i]["manoeuvre"] for i in "lrs"] == ["left", "right", "straight"]
    for r in recs.values():
        assert r["min_ade"] == r["ade"] == r["fde"] == r["displacement_at_1s"] == r["abs_lateral_error_at_horizon"] == 0
    for i in "lr":
        assert recs[i]["turn_recall"] == 1 and recs[i]["pred_straight_rate"] == 0 and recs[i]["wrong_direction_rate"] == 0
        assert recs[i]["abs_pred_final_yaw_deg"] == pytest.approx(abs(recs[i]["true_final_yaw_deg"]), abs=1.0)
        assert recs[i]["false_turn_rate"] is None
    assert recs["s"]["false_turn_rate"] == 0 and recs["s"]["turn_recall"] is None
    # Given yaws and yaws from positions agree on the class; from positions the yaw is half a step behind.
    assert recs["l"]["true_final_yaw_deg"] == pytest.approx(math.degrees(1.28))
    assert recs["r"]["true_final_yaw_deg"] == pytest.approx(-math.degrees(1.28 - 0.02 * 10 * 0.1 / 2))


def test_always_straight_predictor_is_caught_on_turns_only():
    straight_pred = _traj(0.0)[0][None]
    recs = _score({i: straight_pred for i in "lrs"})
    for i in "lr":
        assert recs[i]["pred_straight_rate"] == 1 and recs[i]["turn_recall"] == 0 and recs[i]["wrong_direction_rate"] == 0
        assert recs[i]["abs_pred_final_yaw_deg"] == pytest.approx(0, abs=1e-9)
        assert recs[i]["lateral_error_toward_turn"] < -10  # ends on the outside of the turn: under-turned
    assert recs["l"]["lateral_error_at_horizon"] < 0 < recs["r"]["lateral_error_at_horizon"]
    assert recs["s"]["false_turn_rate"] == 0
    summary = summarise(list(recs.values()), CFG, BOOT)
    turns = summary["sources"]["expert"]["all"]["turns"]
    assert turns["n"] == 2 and turns["abs_yaw_ratio"]["value"] == pytest.approx(0, abs=1e-9)
    assert turns["pred_straight_rate"]["mean"] == 1 and turns["turn_recall"]["mean"] == 0


def test_mirrored_predictor_turns_the_wrong_way():
    recs = _score({"l": RIGHT_XY[None], "r": LEFT_XY[None], "s": STRAIGHT_XY * [1, -1]})
    for i in "lr":
        assert recs[i]["wrong_direction_rate"] == 1 and recs[i]["turn_recall"] == 0 and recs[i]["pred_straight_rate"] == 0
        assert recs[i]["lateral_error_toward_turn"] < 0
    # As far as the truth, the wrong way: the ratio of magnitudes alone does not see it, the rates do.
    summary = summarise(list(recs.values()), CFG, BOOT)
    assert summary["sources"]["expert"]["all"]["turns"]["abs_yaw_ratio"]["value"] == pytest.approx(1, abs=0.02)
    assert recs["s"]["false_turn_rate"] == 0


def test_false_turns_and_rates_average_the_k_samples():
    samples = np.stack([STRAIGHT_XY, LEFT_XY, STRAIGHT_XY, RIGHT_XY])
    rec = _score({"s": samples, "l": np.stack([LEFT_XY, STRAIGHT_XY, RIGHT_XY, LEFT_XY])})
    assert rec["s"]["false_turn_rate"] == 0.5 and rec["s"]["pred_manoeuvres"] == ["straight", "left", "straight", "right"]
    assert (rec["l"]["turn_recall"], rec["l"]["pred_straight_rate"], rec["l"]["wrong_direction_rate"]) == (0.5, 0.25, 0.25)
    assert rec["r"]["status"] == "missing_prediction"


def test_min_ade_is_at_most_ade_and_k_caps_the_samples():
    g = np.random.default_rng(0)
    samples = LEFT_XY[None] + g.normal(0, 1.0, (8, T, 2)) * np.array([3.0, 0.1, 1.0, 0.5, 2.0, 0.2, 1.0, 0.0])[:, None, None]
    rec = scene_metrics(samples, LEFT_XY, CFG)
    assert rec["k"] == CFG.k == 6
    assert rec["min_ade"] < rec["ade"] and rec["min_fde"] <= rec["fde"]
    errs = np.linalg.norm(samples[:6] - LEFT_XY, axis=-1)
    assert rec["min_ade"] == pytest.approx(errs.mean(1).min()) and rec["ade"] == pytest.approx(errs[0].mean())
    assert rec["min_ade"] != pytest.approx(np.linalg.norm(samples - LEFT_XY, axis=-1).mean(1).min())  # sample 7 is exact
    assert rec["min_ade_first_1s"] <= rec["ade_first_1s"]


def test_ade_over_the_first_t_seconds_is_not_the_displacement_at_t():
    t = np.arange(1, T + 1) * 0.1
    pred = LEFT_XY + np.stack([np.zeros(T), 0.3 * t ** 2], -1)  # an error that grows quadratically
    rec = scene_metrics(pred, LEFT_XY, CFG)
    for h in (0.5, 1.0, 3.0, 5.0):
        first = t[t <= h + 1e-9]
        assert rec[f"displacement_at_{h:g}s"] == pytest.approx(0.3 * h ** 2)
        assert rec[f"ade_first_{h:g}s"] == pytest.approx(0.3 * np.mean(first ** 2))
        assert rec[f"ade_first_{h:g}s"] < 0.5 * rec[f"displacement_at_{h:g}s"]
    assert rec["fde"] == pytest.approx(0.3 * 6.4 ** 2) and rec["ade"] == pytest.approx(0.3 * np.mean(t ** 2))


def _scenes(n: int, seed: int):
    """Ground truths: 40% straight (|yaw| < 5 deg), 30% left, 30% right (35-90 deg), speeds 5-15 m/s."""
    g = np.random.default_rng(seed)
    truths, kappas, speeds = {}, {}, {}
    for i in range(n):
        kind = ["s", "s", "s", "s", "l", "l", "l", "r", "r", "r"][i % 10]
        v = g.uniform(5, 15)
        yaw = math.radians(g.uniform(35, 90)) * {"l": 1, "r": -1, "s": 0}[kind] + math.radians(g.uniform(-4, 4)) * (kind == "s")
        kappa = yaw / (v * 6.4)
        truths[f"scene{i:03d}"], kappas[f"scene{i:03d}"], speeds[f"scene{i:03d}"] = _traj(kappa, v)[0], kappa, v
    return truths, kappas, speeds


def _predict(kappas, speeds, seed: int, turn_scale: float = 1.0, k: int = 6):
    """K samples per scene: the curvature of turns (over 15 degrees) scaled by turn_scale, each sample with its
    own curvature and speed noise."""
    g = np.random.default_rng(seed)

    def scale(s):
        return turn_scale if abs(kappas[s] * speeds[s] * 6.4) > math.radians(15) else 1.0

    return {s: np.stack([_traj(kappas[s] * scale(s) + g.normal(0, 0.002), speeds[s] + g.normal(0, 0.5))[0]
                         for _ in range(k)]) for s in kappas}


def test_paired_rig_difference_sees_a_straight_bias_and_no_difference_where_there_is_none():
    truths, kappas, speeds = _scenes(60, seed=0)
    rig_a = score_scenes({"expert": _predict(kappas, speeds, 1)}, truths, CFG, "A")
    biased = score_scenes({"expert": _predict(kappas, speeds, 3, turn_scale=0.7)}, truths, CFG, "B")

    d = paired_differences(rig_a, biased, CFG, BOOT)
    assert d["paired_scenes"] == 60 and d["turns"]["n"] == 36
    ratio = d["turns"]["abs_yaw_ratio"]
    assert ratio["mean_a"] == pytest.approx(1, abs=0.05) and ratio["mean_b"] == pytest.approx(0.7, abs=0.05)
    assert ratio["ci_high"] < 0 and ratio["verdict"] == "b lower"
    assert d["turns"]["ade"]["ci_low"] > 0 and d["turns"]["ade"]["verdict"] == "a better"  # errors: lower is better
    assert d["turns"]["lateral_error_toward_turn"]["ci_high"] < 0
    # Straight scenes are predicted alike by both: their differences are noise, a fraction of the turns'.
    assert abs(d["per_manoeuvre"]["straight"]["min_ade"]["mean"]) < 0.2 * d["turns"]["min_ade"]["mean"]

    # The same model with fresh samples: a 95% CI holds 0 about 19 times in 20, so ask for most of 10 draws.
    covers = {"abs_yaw_ratio": 0, "min_ade": 0, "ade": 0, "fde": 0, "turn_recall": 0}
    for seed in range(2, 12):
        same = score_scenes({"expert": _predict(kappas, speeds, seed)}, truths, CFG, "B")
        d = paired_differences(rig_a, same, CFG, BOOT)
        for key, ci in (("abs_yaw_ratio", d["turns"]["abs_yaw_ratio"]), ("turn_recall", d["turns"]["turn_recall"]),
                        ("min_ade", d["min_ade"]), ("ade", d["ade"]), ("fde", d["fde"])):
            covers[key] += ci["ci_low"] <= 0 <= ci["ci_high"]
    assert all(n >= 8 for n in covers.values()), covers
    # Literally identical predictions: every difference is 0.
    d = paired_differences(rig_a, rig_a, CFG, BOOT)
    assert d["turns"]["abs_yaw_ratio"]["mean"] == 0 and d["ade"]["ci_low"] == d["ade"]["ci_high"] == 0


def test_summary_has_the_metrics_shape_per_source_and_rig_with_differences():
    truths, kappas, speeds = _scenes(30, seed=4)
    tokens = {s: p[:1] for s, p in _predict(kappas, speeds, 6).items()}  # one decode per scene
    del tokens["scene000"]
    records = (score_scenes({"expert": _predict(kappas, speeds, 5), "tokens": tokens}, truths, CFG, "A")
               + score_scenes({"expert": _predict(kappas, speeds, 7, turn_scale=0.6)}, truths, CFG, "B"))
    summary = summarise(records, CFG, BOOT)
    json.dumps(summary)  # plain JSON
    expert = summary["sources"]["expert"]
    assert summary["headline"] == expert["all"]["min_ade"]["mean"] and summary["headline_source"] == "expert"
    assert summary["min_ade"]["n"] == 60 and summary["min_ade"]["ci_low"] < summary["headline"] < summary["min_ade"]["ci_high"]
    assert set(expert["per_rig"]) == {"A", "B"} and expert["per_rig"]["A"]["scenes"] == 30
    assert expert["per_rig"]["B"]["turns"]["abs_yaw_ratio"]["value"] < 0.7 < expert["per_rig"]["A"]["turns"]["abs_yaw_ratio"]["value"]
    for key in ("min_ade_first_0.5s", "ade_first_1s", "displacement_at_3s", "displacement_at_5s", "fde"):
        assert expert["all"][key]["n"] == 60
    assert set(expert["all"]["per_manoeuvre"]) == {"straight", "left", "right"}
    assert "false_turn_rate" in expert["all"]["per_manoeuvre"]["straight"]
    assert "turn_recall" in expert["all"]["per_manoeuvre"]["left"]
    tok = summary["sources"]["tokens"]
    assert tok["all"]["scenes"] == 29 and tok["all"]["missing_prediction"] == 1 and tok["all"]["k"] == {"1": 29}
    assert tok["per_rig"]["B"]["scenes"] == 0 and tok["per_rig"]["B"]["min_ade"]["mean"] is None
    rig = summary["rig_differences"]["expert"]["B - A"]
    assert rig["paired_scenes"] == 30 and rig["turns"]["abs_yaw_ratio"]["verdict"] == "b lower"
    src = summary["source_differences"]["tokens - expert"]
    assert src["A"]["paired_scenes"] == 29 and src["A"]["only_in_a"] == 1 and src["B"]["paired_scenes"] == 0
    # With one sample the minimum is sample 0: tokens' minADE is their ADE, above the expert's minADE over 6.
    assert src["A"]["min_ade"]["verdict"] == "a better"
    with pytest.raises(ValueError, match="baseline_rig 'C'"):
        summarise(records, TrajectoryMetricsConfig(baseline_rig="C"), BOOT)


def test_bad_inputs_are_one_line_errors_naming_the_scene():
    with pytest.raises(ValueError, match="scene x: predictions must be K x T x 2"):
        scene_metrics(np.zeros((2, 10, 2)), LEFT_XY, CFG, scene="x")
    with pytest.raises(ValueError, match="horizon 0.25 s is not a waypoint"):
        scene_metrics(LEFT_XY, LEFT_XY, TrajectoryMetricsConfig(horizons_s=[0.25]))
    with pytest.raises(ValueError, match="horizon 7 s"):
        scene_metrics(LEFT_XY, LEFT_XY, TrajectoryMetricsConfig(horizons_s=[7.0]))
    with pytest.raises(ValueError, match="manoeuvre label 'u-turn'"):
        scene_metrics(LEFT_XY, LEFT_XY, CFG, label="u-turn")
    with pytest.raises(ValueError, match="yaws must be one per waypoint"):
        scene_metrics(np.stack([LEFT_XY] * 3), LEFT_XY, CFG, pred_yaw=LEFT_YAW)
    with pytest.raises(ValueError, match="have no ground truth, e.g. 'nope'"):
        score_scenes({"expert": {"nope": LEFT_XY}}, TRUTHS, CFG)
    twice = score_scenes({"expert": TRUTHS}, TRUTHS, CFG, "A") + score_scenes({"expert": TRUTHS}, TRUTHS, CFG, "B")
    with pytest.raises(ValueError, match="scene l appears twice on side a"):
        paired_differences(twice, twice, CFG, BOOT)
    # A label overrides the class the final yaw gives.
    assert scene_metrics(LEFT_XY, STRAIGHT_XY, CFG, label="left")["manoeuvre_from"] == "label"


def test_ratio_statistics_resample_the_ratio_not_per_item_ratios():
    num, den = [1.0, 9.0, 2.0, 8.0], [10.0, 10.0, 1.0, 9.0]
    r = ratio_ci(num, den, samples=500)
    assert r["value"] == pytest.approx(20 / 30) and r["n"] == 4 and r["ci_low"] <= r["value"] <= r["ci_high"]
    assert ratio_ci([None, 1.0], [2.0, 4.0])["n"] == 1 and ratio_ci([], [])["value"] is None
    p = paired_ratio_diff_ci(num, den, [2 * x for x in num], den, samples=500)
    assert p["mean"] == pytest.approx(20 / 30) and p["ci_low"] > 0 and p["verdict"] == "b higher"
    assert verdict(0.1, 0.2) == "b better" and verdict(0.1, 0.2, higher_is_better=False) == "a better"
    assert verdict(-0.2, -0.1, higher_is_better=None) == "b lower" and verdict(-0.1, 0.1, None) == "no significant difference"
