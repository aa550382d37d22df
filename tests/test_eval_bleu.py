"""BLEU as the peers compute it: values compared without the key names that inflate it, the cookbook's
whole-caption comparison on the 0-1 scale one preset away, and the scale printed wherever the number is."""

import json

import pytest
import sacrebleu
from omegaconf import OmegaConf

from _compose import compose_typed
from _judge_server import write_caption_record
from cosmos_exp.config.evaluation import EvalConfig
from cosmos_exp.config.schema import Config
from cosmos_exp.data.labels import caption_target
from cosmos_exp.evaluate import bleu
from cosmos_exp.stages import judge as judge_stage

KEYS = ["weather", "lighting", "road_type"]
REFS = [{"weather": "Light rain", "lighting": "Daytime", "road_type": "Residential street"},
        {"weather": "Clear", "lighting": "Night with street lights", "road_type": "Highway"}]
# Every value wrong, and no value shares a word with its reference.
WRONG = [{"weather": "Snow", "lighting": "Night", "road_type": "Highway"},
         {"weather": "Fog", "lighting": "Dusk", "road_type": "Parking lot"}]


def _run(tmp_path, preds, raw=None, **ev):
    for i, (ref, pred) in enumerate(zip(REFS, preds)):
        rec = {"id": f"c{i}", "reference": ref, "parsed": pred}
        if raw:
            rec["raw_text"] = raw[i]
        write_caption_record(tmp_path / "cap", rec)
    cfg = OmegaConf.structured(Config)
    cfg.eval = OmegaConf.structured(EvalConfig)
    cfg.paths.root, cfg.captions = str(tmp_path / "out"), str(tmp_path / "cap")
    cfg.eval.metrics, cfg.eval.caption_keys, cfg.eval.bootstrap_samples = ["bleu"], KEYS, 50
    for k, v in ev.items():
        setattr(cfg.eval, k, v)
    judge_stage.run(cfg, tmp_path / "run")
    return json.loads((tmp_path / "run" / "summary.json").read_text())["metrics"]["bleu"]


def test_full_label_compares_values_without_the_key_names(tmp_path):
    # sacrebleu corpus BLEU (13a, exp smoothing): with no hypothesis unigram in its reference the 1-gram
    # precision is 0 and BLEU is 0.0, which is what every value being wrong deserves.
    m = _run(tmp_path, WRONG, bleu_reference="full_label")
    assert m["headline"] == 0.0 and m["scale"] == "0-100"
    # The same captions joined as "key: value" lines score ~26 on sacrebleu's scale from the shared names alone.
    with_names = sacrebleu.corpus_bleu(["\n".join(f"{k}: {p[k]}" for k in KEYS) for p in WRONG],
                                       [["\n".join(f"{k}: {r[k]}" for k in KEYS) for r in REFS]]).score
    assert with_names > 20


def test_whole_caption_bleu_on_the_cookbook_scale(tmp_path):
    # The cookbook compares the whole generated caption with the human caption and reports BLEU on 0-1, which is
    # Hugging Face evaluate's BLEU = sacrebleu's corpus score / 100.
    answers = [json.dumps(p, indent=2) for p in WRONG]
    raw = [f"<think>draft</think>```json\n{answers[0]}\n```", answers[1]]  # reasoning and fence are not the caption
    cfg = compose_typed(["stage=judge", "eval=bleu_cookbook", f"captions={tmp_path}"])
    assert (cfg.eval.bleu_reference, cfg.eval.bleu_scale, list(cfg.eval.metrics)) == ("whole_caption", "0-1", ["bleu"])
    m = _run(tmp_path, WRONG, raw, bleu_reference="whole_caption", bleu_scale="0-1")
    expected = sacrebleu.corpus_bleu(answers, [[caption_target(r) for r in REFS]]).score / 100
    assert m["headline"] == pytest.approx(expected, abs=1e-12) and 0 < expected < 1
    assert m["scale"] == "0-1" and m["corpus"]["scale"] == "0-1"
    assert m["corpus"]["ci_low"] <= m["headline"] <= m["corpus"]["ci_high"] <= 1


def test_scales_agree_and_the_compare_table_names_the_scale():
    from cosmos_exp.evaluate.compare import compare_metric, render_markdown

    hyps, refs = ["the car turns left", "a pedestrian crosses"], ["the car turns left slowly", "nobody crosses"]
    a100 = bleu.corpus_bleu(hyps, refs)
    a01 = bleu.corpus_bleu(hyps, refs, scale="0-1")
    assert a01["score"] == pytest.approx(a100["score"] / 100)
    assert bleu.sentence_bleu(hyps[0], refs[0], "0-1") == pytest.approx(bleu.sentence_bleu(hyps[0], refs[0]) / 100)
    stats = bleu.segment_stats(hyps, refs)
    pairs = [({"value": 1.0, "stats": s}, {"value": 1.0, "stats": s}) for s in stats]
    block = compare_metric("bleu", pairs, {"samples": 50, "confidence": 0.95, "seed": 0}, "0-1")
    assert block["corpus"]["a"] == pytest.approx(a01["score"]) and block["scale"] == "0-1"
    out = {"a": {"run": "A", "checkpoint": None}, "b": {"run": "B", "checkpoint": None}, "paired_items": 2,
           "bootstrap": {"confidence": 0.95}, "metrics": {"bleu": block}, "warnings": []}
    assert "| bleu (0-1) | corpus |" in render_markdown(out)
