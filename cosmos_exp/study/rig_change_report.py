"""The rig-change study's report: rig_change.json and rig_change.md in the study directory, from the summary.json
and score files of its four evaluation runs (study/rig_change.py).

- one row per model (trained on A; + expert only on B; + stage 1+2 on B; + stage 1+2 on A+B), for each rig: the
  expert's minADE and ADE over all scenes; on ground-truth turns its abs_yaw_ratio, turn_recall,
  pred_straight_rate and wrong_direction_rate; false_turn_rate on straights; the backbone's token decode's
  abs_yaw_ratio on turns;
- per model, rig B minus rig A on the same scenes with the evaluation's paired bootstrap CIs (summary.json's
  rig_differences): abs_yaw_ratio on turns, and overall minADE and ADE beside it;
- per fix, fix minus the model trained on A on the same scenes of each rig (evaluate/compare.py): what it costs
  on rig A and what it changes on rig B;
- findings: sentences computed from those numbers (whether the bias shows, which fix removes it, at what cost).
"""

from pathlib import Path
from typing import Any, Dict, List, Optional

from cosmos_exp import rundir
from cosmos_exp.config import DataError
from cosmos_exp.config.names import RIG_CHANGE_PHASES
from cosmos_exp.config.study import RigChangeConfig
from cosmos_exp.evaluate.trajectory_scores import METRIC
from cosmos_exp.repro.atomic import write_json_atomic, write_text_atomic
from cosmos_exp.study.rig_change import VARIANTS, Variant, final_checkpoint

# (key, column header, path in an evaluation's per-rig block of summary.json, the source it is read from)
COLUMNS = (
    ("min_ade", "minADE (m)", ("min_ade", "mean"), "expert"),
    ("ade", "ADE (m)", ("ade", "mean"), "expert"),
    ("abs_yaw_ratio", "abs_yaw_ratio, turns", ("turns", "abs_yaw_ratio", "value"), "expert"),
    ("turn_recall", "turn_recall", ("turns", "turn_recall", "mean"), "expert"),
    ("pred_straight_rate", "pred_straight_rate, turns", ("turns", "pred_straight_rate", "mean"), "expert"),
    ("wrong_direction_rate", "wrong_direction_rate, turns", ("turns", "wrong_direction_rate", "mean"), "expert"),
    ("false_turn_rate", "false_turn_rate, straights", ("per_manoeuvre", "straight", "false_turn_rate", "mean"),
     "expert"),
    ("tokens_abs_yaw_ratio", "token decode abs_yaw_ratio, turns", ("turns", "abs_yaw_ratio", "value"), "tokens"),
)
# Rig B - rig A of each model: (key, path in summary.json's rig_differences[source]["<b> - <a>"], source)
RIG_GAP = (("abs_yaw_ratio", ("turns", "abs_yaw_ratio"), "expert"), ("min_ade", ("min_ade",), "expert"),
           ("ade", ("ade",), "expert"), ("tokens_abs_yaw_ratio", ("turns", "abs_yaw_ratio"), "tokens"))
# Fix - trained on A on one rig's scenes: (key, path in a paired_differences block)
VERSUS_A_TRAINED = (("min_ade", ("min_ade",)), ("ade", ("ade",)), ("abs_yaw_ratio", ("turns", "abs_yaw_ratio")),
                    ("turn_recall", ("turns", "turn_recall")),
                    ("false_turn_rate", ("per_manoeuvre", "straight", "false_turn_rate")))


def _get(tree: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def excludes_zero(diff: Optional[Dict[str, Any]]) -> Optional[bool]:
    """Whether a difference's CI excludes 0 (None: no CI, too few paired scenes)."""
    if not diff or diff.get("ci_low") is None or diff.get("ci_high") is None:
        return None
    return diff["ci_low"] > 0 or diff["ci_high"] < 0


def _evaluation(study_dir: Path, variant: Variant) -> Dict[str, Any]:
    """The trajectory block of a finished evaluation's summary.json; a DataError naming it when unfinished."""
    where = rundir.study_run(study_dir, variant.evaluation)
    if not (where / rundir.EVALUATE_JSON).is_file() or not (where / rundir.SUMMARY_JSON).is_file():
        raise DataError(f"{where} holds no finished evaluation ({rundir.EVALUATE_JSON}); run the study first "
                        "(cosmos-exp experiment=rig_change hydra.run.dir=<the study directory>)")
    summary = rundir.read_json(where / rundir.SUMMARY_JSON)
    block = _get(summary, "metrics", METRIC)
    if not block:
        raise DataError(f"{where / rundir.SUMMARY_JSON} has no {METRIC} metric")
    return {"run": str(where), "checkpoint": summary.get("checkpoint"), "bootstrap": summary.get("bootstrap"),
            "metric": block}


def _per_rig(metric: Dict[str, Any], rig: str) -> Dict[str, Any]:
    row: Dict[str, Any] = {key: _get(metric, "sources", source, "per_rig", rig, *path)
                           for key, _, path, source in COLUMNS}
    block = _get(metric, "sources", "expert", "per_rig", rig) or {}
    row.update(scenes=block.get("scenes"), turns=_get(block, "turns", "n"),
               straights=_get(block, "per_manoeuvre", "straight", "n"))
    return row


def _rig_gap(metric: Dict[str, Any], study: RigChangeConfig) -> Dict[str, Any]:
    pair = f"{study.rig_b} - {study.rig_a}"
    out = {key: _get(metric, "rig_differences", source, pair, *path) for key, path, source in RIG_GAP}
    out["paired_scenes"] = _get(metric, "rig_differences", "expert", pair, "paired_scenes")
    for key, _, _ in RIG_GAP:
        if out[key] is not None:
            out[key] = {**out[key], "excludes_zero": excludes_zero(out[key])}
    return out


def _versus_a_trained(a_run: str, fix_run: str, study: RigChangeConfig, boot: Dict[str, Any]) -> Dict[str, Any]:
    """Fix - trained on A on the same scenes of each rig, the expert's (evaluate/compare.py's pairing)."""
    from cosmos_exp.evaluate.compare import compare_runs

    compared = compare_runs(Path(a_run), Path(fix_run), boot)
    by_rig = _get(compared, "metrics", METRIC, "by_source", "expert") or {}
    out: Dict[str, Any] = {}
    for rig in (study.rig_a, study.rig_b):
        diffs = {key: _get(by_rig, rig, *path) for key, path in VERSUS_A_TRAINED}
        out[rig] = {"paired_scenes": _get(by_rig, rig, "paired_scenes"),
                    **{k: (None if d is None else {**d, "excludes_zero": excludes_zero(d)}) for k, d in diffs.items()}}
    return out


def build_report(study_dir: Path, study: RigChangeConfig) -> Dict[str, Any]:
    study_dir = Path(study_dir)
    evaluations = {v.name: _evaluation(study_dir, v) for v in VARIANTS}
    boot = evaluations[VARIANTS[0].name]["bootstrap"] or {}
    rigs = (study.rig_a, study.rig_b)
    variants = []
    for v in VARIANTS:
        ev = evaluations[v.name]
        row = {"name": v.name, "label": v.label, "evaluation": ev["run"], "checkpoint": ev["checkpoint"],
               "trained_by": str(rundir.study_run(study_dir, v.trained_by)),
               "per_rig": {rig: _per_rig(ev["metric"], rig) for rig in rigs},
               "rig_gap": _rig_gap(ev["metric"], study)}
        if v is not VARIANTS[0]:
            row["versus_trained_on_a"] = _versus_a_trained(evaluations[VARIANTS[0].name]["run"], ev["run"], study, boot)
        variants.append(row)
    report = {"study": str(study_dir), "rig_a": study.rig_a, "rig_b": study.rig_b,
              "confidence": boot.get("confidence", 0.95), "bootstrap": boot,
              "columns": [{"key": key, "header": header, "source": source} for key, header, _, source in COLUMNS],
              "steps": {phase: study[phase].steps for phase in RIG_CHANGE_PHASES},
              "checkpoints": {v.name: str(final_checkpoint(study_dir, study, v.trained_by)) for v in VARIANTS},
              "variants": variants}
    report["findings"] = findings(report)
    return report


def write_report(study_dir: Path, study: RigChangeConfig) -> Dict[str, Any]:
    report = build_report(study_dir, study)
    write_json_atomic(Path(study_dir) / rundir.RIG_CHANGE_JSON, report)
    write_text_atomic(Path(study_dir) / rundir.RIG_CHANGE_MD, render_markdown(report))
    return report


# -- words from the numbers ---------------------------------------------------------------------------------

def _num(value: Optional[float], signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.3g}" if signed else f"{value:.3g}"


def _ci(diff: Optional[Dict[str, Any]]) -> str:
    if not diff or diff.get("mean") is None:
        return "-"
    if diff.get("ci_low") is None:
        return f"{_num(diff['mean'], True)} (no CI)"
    return f"{_num(diff['mean'], True)} [{_num(diff['ci_low'], True)}, {_num(diff['ci_high'], True)}]"


def _zero(diff: Optional[Dict[str, Any]]) -> str:
    verdict = excludes_zero(diff)
    return "too few scenes" if verdict is None else ("excludes 0" if verdict else "includes 0")


def _relative(diff: Optional[Dict[str, Any]]) -> Optional[float]:
    if not diff or diff.get("mean") is None or not diff.get("mean_a"):
        return None
    return diff["mean"] / diff["mean_a"]


def _pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{100 * value:+.1f}%"


def deficit_on_b(gap: Optional[Dict[str, Any]]) -> Optional[bool]:
    """Whether rig B turns significantly less than rig A (abs_yaw_ratio B - A with a CI below 0)."""
    verdict = excludes_zero(gap)
    return None if verdict is None else bool(verdict and gap["mean"] < 0)


def findings(report: Dict[str, Any]) -> List[str]:
    a, b = report["rig_a"], report["rig_b"]
    conf = f"{round(100 * report['confidence'])}% CI"
    base, fixes = report["variants"][0], report["variants"][1:]
    yaw, min_ade, ade = (base["rig_gap"].get(k) for k in ("abs_yaw_ratio", "min_ade", "ade"))
    out: List[str] = []
    bias = deficit_on_b(yaw)
    if bias is None:
        out.append(f"The model trained on {a}: too few turn scenes for a CI of abs_yaw_ratio on {b} - {a}.")
    else:
        what = (f"turns less on {b}: a straight bias" if bias else
                f"turns more on {b}" if excludes_zero(yaw) else f"shows no rig difference in how far it turns")
        out.append(f"The model trained on {a} {what} (abs_yaw_ratio on turns {_num(yaw['mean_a'])} on {a}, "
                   f"{_num(yaw['mean_b'])} on {b}; {b} - {a} {_ci(yaw)}, {conf} {_zero(yaw)}).")
        overall = (f"Over all scenes its minADE changes by {_ci(min_ade)} m ({_pct(_relative(min_ade))} of {a}'s, "
                   f"CI {_zero(min_ade)}) and its ADE by {_ci(ade)} m ({_pct(_relative(ade))}, CI {_zero(ade)}), "
                   f"against {_pct(_relative(yaw))} for abs_yaw_ratio on turns")
        if bias:
            understated = not excludes_zero(ade) or abs(_relative(ade) or 0) < abs(_relative(yaw) or 0)
            overall += (": overall ADE understates the bias." if understated else
                        ": overall ADE shows the change as strongly.")
        out.append(overall + ("" if bias else "."))
    tokens = base["rig_gap"].get("tokens_abs_yaw_ratio")
    if excludes_zero(tokens) is not None:
        out.append(f"Its backbone's token decode: abs_yaw_ratio on turns {_num(tokens['mean_a'])} on {a}, "
                   f"{_num(tokens['mean_b'])} on {b} ({b} - {a} {_ci(tokens)}, {_zero(tokens)}).")
    removed = []
    for fix in fixes:
        gap = fix["rig_gap"].get("abs_yaw_ratio")
        on_b, on_a = fix["versus_trained_on_a"][b], fix["versus_trained_on_a"][a]
        left = deficit_on_b(gap)
        state = ("too few turn scenes for a CI" if left is None else
                 f"it turns less on {b}: a straight bias" if left else f"no significant deficit on {b}")
        out.append(f"{fix['label']}: abs_yaw_ratio on turns {_num(_get(gap, 'mean_a'))} on {a}, "
                   f"{_num(_get(gap, 'mean_b'))} on {b} ({b} - {a} {_ci(gap)}: {state}); on {b} against the "
                   f"model trained on {a}: abs_yaw_ratio {_ci(on_b.get('abs_yaw_ratio'))}, minADE "
                   f"{_ci(on_b.get('min_ade'))} m; on {a}, what it costs: minADE {_ci(on_a.get('min_ade'))} m "
                   f"({_zero(on_a.get('min_ade'))}), abs_yaw_ratio {_ci(on_a.get('abs_yaw_ratio'))} "
                   f"({_zero(on_a.get('abs_yaw_ratio'))}).")
        if left is False:
            removed.append(fix)
    if not bias:
        out.append(f"With no straight bias on {b} to begin with, no fix is credited with removing one.")
    elif not removed:
        out.append(f"No fix removes the straight bias on {b} at these settings.")
    else:
        ranked = sorted(removed, key=lambda f: _get(f, "versus_trained_on_a", a, "min_ade", "mean") or 0.0)
        names = ", ".join(f["label"] for f in ranked)
        cheapest = ranked[0]
        cost = cheapest["versus_trained_on_a"][a].get("min_ade")
        out.append(f"Removes the straight bias on {b} (no significant {b} - {a} deficit left): {names}; the "
                   f"cheapest on {a} by minADE is {cheapest['label']} ({_ci(cost)} m, CI {_zero(cost)}).")
    return out


def render_markdown(report: Dict[str, Any]) -> str:
    a, b = report["rig_a"], report["rig_b"]
    conf = f"{round(100 * report['confidence'])}%"
    cols = report["columns"]
    lines = [f"# Rig change: {a} -> {b}", "",
             f"Study: `{report['study']}`; each model's evaluation is `runs/eval_<model>/` (summary.json, "
             f"scores/). Expert = the flow-matching action expert; token decode = the backbone's discrete "
             "trajectory tokens. Turns and straights are the ground truth's manoeuvres.", "",
             "| model | " + " | ".join(f"{c['header']} {rig}" for c in cols for rig in ("A", "B")) + " |",
             "|---|" + "---|" * (2 * len(cols))]
    for v in report["variants"]:
        cells = [_num(v["per_rig"][rig][c["key"]]) for c in cols for rig in (a, b)]
        lines.append(f"| {v['label']} | " + " | ".join(cells) + " |")
    first = report["variants"][0]["per_rig"][a]
    lines += ["", f"A = {a}, B = {b}; per rig {first['scenes']} scenes ({first['turns']} turns, "
                  f"{first['straights']} straights).", "",
              f"## {b} - {a} on the same scenes (paired bootstrap, {conf} CI)", "",
              "| model | abs_yaw_ratio on turns, A -> B | B - A | CI | minADE B - A (m) | CI | ADE B - A (m) | CI "
              "| token decode abs_yaw_ratio B - A | CI |", "|---|---|---|---|---|---|---|---|---|---|"]
    for v in report["variants"]:
        g = v["rig_gap"]
        yaw = g.get("abs_yaw_ratio") or {}
        lines.append(f"| {v['label']} | {_num(yaw.get('mean_a'))} -> {_num(yaw.get('mean_b'))} | {_ci(yaw)} | "
                     f"{_zero(yaw)} | {_ci(g.get('min_ade'))} | {_zero(g.get('min_ade'))} | {_ci(g.get('ade'))} | "
                     f"{_zero(g.get('ade'))} | {_ci(g.get('tokens_abs_yaw_ratio'))} | "
                     f"{_zero(g.get('tokens_abs_yaw_ratio'))} |")
    for rig, title in ((a, f"What each fix costs on {a}"), (b, f"What each fix changes on {b}")):
        lines += ["", f"## {title} (fix - trained on A, the same {rig} scenes, {conf} CI)", "",
                  "| fix | minADE (m) | ADE (m) | abs_yaw_ratio, turns | turn_recall | false_turn_rate, straights |",
                  "|---|---|---|---|---|---|"]
        for v in report["variants"][1:]:
            d = v["versus_trained_on_a"][rig]
            lines.append(f"| {v['label']} | " + " | ".join(
                f"{_ci(d.get(k))} ({_zero(d.get(k))})" for k, _ in VERSUS_A_TRAINED) + " |")
    lines += ["", "## What the table shows", ""] + [f"- {f}" for f in report["findings"]]
    return "\n".join(lines) + "\n"
