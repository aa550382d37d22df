"""Reasoning-model outputs: `<think>...</think>` removed before anything parses the answer, the `<answer>` block
read when there is one (lmms-eval strips reasoning tags before extraction; the Cosmos-Reason benchmark reads the
letter inside `<answer>`), and compatibility characters NFKC-folded before letters are read."""

import json

import pytest
from omegaconf import OmegaConf

from _judge_server import label, write_caption_record
from cosmos_exp.config.evaluation import EvalConfig
from cosmos_exp.config.schema import Config
from cosmos_exp.evaluate.lingoqa import lingoqa_fields
from cosmos_exp.evaluate.mcq import parse_choice
from cosmos_exp.infer.parse import OK, parse_answer
from cosmos_exp.infer.reasoning import final_answer, strip_reasoning
from cosmos_exp.stages import judge as judge_stage


@pytest.mark.parametrize("text,expected", [
    ("<think>a draft</think>The answer.", "The answer."),
    ("<THINK>one</THINK> middle <think>two</think> end", "middle  end"),
    # A chat template that opened <think> in the prompt: only the closing tag is generated.
    ("reasoning that the template opened</think>\nfinal", "final"),
    # Cut off inside the reasoning (max_new_tokens): no answer was given.
    ("Answer first? <think>still thinking about B", "Answer first?"),
    ("plain text", "plain text"), ("", ""), (None, ""),
])
def test_strip_reasoning(text, expected):
    assert strip_reasoning(text) == expected


def test_final_answer_prefers_the_answer_block_outside_the_reasoning():
    assert final_answer("<think>maybe <answer>A</answer></think> so <answer> C </answer> done") == "C"
    assert final_answer("<think>x</think>no block here") == "no block here"


def test_caption_json_inside_the_reasoning_is_a_draft():
    draft, answer = {"weather": "Sunny"}, {"weather": "Light rain", "lighting": "Daytime"}
    text = f"<think>First try: {json.dumps(draft)}. No, it rains.</think>\n```json\n{json.dumps(answer)}\n```"
    assert parse_answer(text) == (answer, OK)
    assert parse_answer(f"<think>{json.dumps(draft)}</think><answer>{json.dumps(answer)}</answer>") == (answer, OK)
    assert parse_answer(f"<think>{json.dumps(draft)} and then the budget ran out") == (None, "no_json")


def test_judge_scores_the_answer_of_an_old_record_that_parsed_the_draft(tmp_path):
    """A caption record written before reasoning blocks were removed holds the draft as `parsed`; the judge
    parses its raw text again and scores the answer."""
    ref = {k: v for k, v in label(0).items() if k in ("weather", "lighting")}
    draft = {"weather": "Snow", "lighting": "Night"}
    raw = f"<think>{json.dumps(draft)} - wrong, look again</think>{json.dumps(ref)}"
    write_caption_record(tmp_path / "cap", {"id": "r0", "reference": ref, "parsed": draft, "raw_text": raw})
    cfg = OmegaConf.structured(Config)
    cfg.eval = OmegaConf.structured(EvalConfig)
    cfg.paths.root, cfg.captions = str(tmp_path / "out"), str(tmp_path / "cap")
    cfg.eval.metrics, cfg.eval.caption_keys, cfg.eval.bootstrap_samples = ["local"], ["weather", "lighting"], 50
    judge_stage.run(cfg, tmp_path / "run")
    keys = json.loads((tmp_path / "run" / "scores" / "r0.score.json").read_text())["metrics"]["local"]["keys"]
    assert keys["weather"]["score"] == 5.0 and keys["lighting"]["score"] == 5.0  # the draft would score 1


@pytest.mark.parametrize("text,expected,how", [
    # The letter inside the reasoning is a draft; the one after it is the answer.
    ("<think>It could be A, since a car turns.</think>The answer is C.", "C", "phrase"),
    ("<think>A? B?</think><answer>D</answer>", "D", "tag"),
    ("<think>A</think>\n<answer>(b) stops at the light</answer>", "B", "tag"),
    # NFKC first: a full-width letter is the letter (a plain regex for [A-D] misses it).
    ("答案：Ｂ", "B", "letter"), ("<answer>Ｃ</answer>", "C", "tag"), ("（Ｄ）", "D", "letter"),
    # Cut off inside the reasoning: unparseable, which counts as wrong.
    ("<think>Probably B because", None, "none"),
    ("<answer>I cannot tell</answer>", None, "none"),
])
def test_mcq_reads_the_answer_not_the_reasoning(text, expected, how):
    assert parse_choice(text) == (expected, how)


def test_mcq_json_answer_is_nfkc_folded():
    assert parse_choice("", parsed={"answer": "Ｂ"}) == ("B", "json")


def test_lingoqa_prediction_drops_the_reasoning():
    rec = {"question": "Is it raining?", "reference": {"answers": ["Yes."]},
           "raw_text": "<think>The wipers are off, so no? But the road is wet.</think><answer>Yes, it is.</answer>"}
    assert lingoqa_fields(rec) == ("Is it raining?", ["Yes."], "Yes, it is.")
    rec["raw_text"] = "<think>Wipers are on.</think>\nYes, it is raining. "
    assert lingoqa_fields(rec)[2] == "Yes, it is raining."
