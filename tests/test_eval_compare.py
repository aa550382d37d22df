"""stage=compare: paired b - a differences with bootstrap CIs between two real judge runs."""

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from _judge_server import CAPTION_KEYS, FakeJudgeServer, label, write_caption_record
from cosmos_exp.config import ConfigError
from cosmos_exp.config.evaluation import EvalConfig
from cosmos_exp.config.schema import Config
from cosmos_exp.evaluate.compare import render_markdown
from cosmos_exp.stages import compare as compare_stage
from cosmos_exp.stages import judge as judge_stage


def caption_run(d: Path, n: int, wrong_keys: int) -> None:
    """n items whose first `wrong_keys` caption keys are replaced by another item's answer."""
    for i in range(n):
        ref = label(i)
        pred = dict(ref)
        for k in CAPTION_KEYS[:wrong_keys] + ["safety_analysis"]:
            pred[k] = label(i + 1 + i % 3)[k] if k != "safety_analysis" else \
                (ref[k] if wrong_keys < 5 else "The ego vehicle drives on.")
        write_caption_record(d, {"id": f"c{i:03d}", "reference": ref, "parsed": pred,
                                 "checkpoint": f"/ckpt/{'base' if wrong_keys > 4 else 'sft'}"})


def cfg_for(tmp_path: Path, server, **top) -> "OmegaConf":
    cfg = OmegaConf.structured(Config)
    cfg.eval = OmegaConf.structured(EvalConfig)
    cfg.paths.root = str(tmp_path / "outputs")
    cfg.eval.metrics = ["llm_judge", "local", "bleu"]
    cfg.eval.bootstrap_samples = 500
    cfg.eval.judge.base_url = server.base_url
    cfg.eval.judge.api_key_env = "COSMOS_TEST_JUDGE_KEY"
    for k, v in top.items():
        setattr(cfg, k, v)
    return cfg


def test_sft_beats_base_with_uncertainty(tmp_path, monkeypatch):
    monkeypatch.setenv("COSMOS_TEST_JUDGE_KEY", "sk-local")
    caption_run(tmp_path / "cap_base", 30, wrong_keys=8)
    caption_run(tmp_path / "cap_sft", 30, wrong_keys=2)
    with FakeJudgeServer() as server:
        judge_stage.run(cfg_for(tmp_path, server, captions=str(tmp_path / "cap_base")), tmp_path / "j_base")
        judge_stage.run(cfg_for(tmp_path, server, captions=str(tmp_path / "cap_sft")), tmp_path / "j_sft")
        cfg = cfg_for(tmp_path, server, a=str(tmp_path / "j_base"), b=str(tmp_path / "j_sft"))
    assert "30 items scored by both runs" in compare_stage.plan(cfg).render()
    result = compare_stage.run(cfg, tmp_path / "cmp")
    out = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert out["paired_items"] == 30 and out["warnings"] == []
    assert out["a"]["checkpoint"] == "/ckpt/base" and out["b"]["checkpoint"] == "/ckpt/sft"
    local = out["metrics"]["local"]
    assert local["overall"]["verdict"] == "b better" == result["verdicts"]["local"]
    assert local["overall"]["ci_low"] > 0
    assert local["overall"]["mean"] == pytest.approx(local["overall"]["mean_b"] - local["overall"]["mean_a"])
    # Keys both models answer identically show no difference; a key only base got wrong shows one.
    assert local["per_key"]["traffic_sign"]["verdict"] == "b better"
    assert local["per_key"]["interesting_scenario"]["mean"] == 0.0
    assert out["metrics"]["llm_judge"]["overall"]["verdict"] == "b better"
    corpus = out["metrics"]["bleu"]["corpus"]
    assert corpus["diff"] == pytest.approx(corpus["b"] - corpus["a"]) and corpus["verdict"] == "b better"
    md = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "| local | overall | 30 |" in md and "b better" in md
    # The strict overall (missing keys scored 1) pairs every item too.
    strict = local["overall_missing_as_min"]
    assert strict["n"] == 30 and strict["verdict"] == "b better"
    assert "| local | overall (missing keys = 1) | 30 |" in md


def test_run_against_itself_and_bad_inputs(tmp_path, monkeypatch):
    monkeypatch.setenv("COSMOS_TEST_JUDGE_KEY", "sk-local")
    caption_run(tmp_path / "cap", 5, wrong_keys=3)
    with FakeJudgeServer() as server:
        judge_stage.run(cfg_for(tmp_path, server, captions=str(tmp_path / "cap")), tmp_path / "j")
        cfg = cfg_for(tmp_path, server, a=str(tmp_path / "j"), b=str(tmp_path / "j"))
        compare_stage.run(cfg, tmp_path / "cmp")
        out = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
        assert all(v["overall"]["verdict"] == "no significant difference" for v in out["metrics"].values())
        with pytest.raises(ConfigError) as e:
            compare_stage.plan(cfg_for(tmp_path, server, a=str(tmp_path / "j"), b=str(tmp_path / "cap")))
        assert e.value.key == "b"
        with pytest.raises(ConfigError) as e:
            compare_stage.plan(cfg_for(tmp_path, server, b=str(tmp_path / "j")))
        assert e.value.key == "a"


def test_markdown_lists_keys_never_scored_on_both_sides_once():
    """A base model that never emits JSON has no per-key scores: those keys are named in one line, not as empty
    table rows; keys with paired items keep their rows."""
    from cosmos_exp.evaluate.stats import paired_diff_ci

    boot = {"samples": 200, "confidence": 0.95, "seed": 0}
    paired = paired_diff_ci([1.0, 2.0, 1.0], [3.0, 4.0, 5.0], **boot)
    empty = paired_diff_ci([None, None], [3.0, 4.0], **boot)
    assert empty["n"] == 0 and paired["n"] == 3
    out = {"a": {"run": "/a", "checkpoint": "/base"}, "b": {"run": "/b", "checkpoint": "/sft"}, "paired_items": 3,
           "bootstrap": boot, "warnings": [],
           "metrics": {"local": {"overall": paired, "per_key": {"weather": paired, "lighting": empty,
                                                                "lane_type": empty}}}}
    md = render_markdown(out)
    assert "| local | weather | 3 |" in md
    assert "| local | lighting |" not in md and "| local | lane_type |" not in md
    assert "no item scored on both sides" in md and "local/lighting, local/lane_type" in md
