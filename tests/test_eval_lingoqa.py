"""LingoQA as the official benchmark computes it, with a hand-built classifier whose verdict follows from its input.

The stand-in Lingo-Judge is a GPT-2 sequence classifier with no layers and 2-dimensional embeddings: the logit
reads the LAST token only, as LayerNorm(token embedding + position embedding) . [1, 0], which is +1 when the
first component is larger and -1 otherwise. "yes" embeds as [1, 0], every other token (and [UNK]) as [0, 1];
positions 20-99 add [3, 0]. So a verdict is correct exactly when the last token is "yes" at a position outside
20-99, or any token at a position in 20-99. Each benchmark rule moves the last token or its position, so the
expected verdicts below are computed by hand from the rules and a wrong preprocessing flips them.

Token counts (word-level vocabulary, whitespace/punctuation split): "<cls>" 1, "Question :" 2,
"How many cars are there ?" 6, "Answer :" 2, the reference, "Student :" 2, the prediction; the last token's
position is 12 + len(reference) + len(prediction).
"""

import json
import os

import numpy as np
import pytest
from omegaconf import OmegaConf

from _compose import compose_typed
from _judge_server import write_caption_record
from cosmos_exp.config import ConfigError
from cosmos_exp.config.evaluation import EvalConfig
from cosmos_exp.config.schema import Config
from cosmos_exp.config.validate import check_eval, validate
from cosmos_exp.evaluate.lingoqa import LingoJudge, classifier_text
from cosmos_exp.stages import judge as judge_stage

WORDS = ["[PAD]", "[UNK]", "<cls>", "Question", "Answer", "Student", ":", "?", ".", "yes", "no"] + \
    "how many cars are there two it is raining the road ahead of us on wet".split()
QUESTION = "How many cars are there?"  # never lower-cased: "How" stays [UNK] (the benchmark keeps the question)
INSTRUCTION = "Answer the question about this driving clip in one or two short sentences."

# (id, references, prediction, expected verdict, the rule it checks)
CASES = [
    # Prediction lower-cased and stripped: "yes" at position 12 + 3 + 1 = 16 -> +1. Kept as "YES" it is [UNK] -> -1.
    ("lower", ["Two cars."], "  YES ", 1.0),
    # Maximum over references: "Two." puts "no" at 15 -> -1; the 12-token reference puts it at 25 -> +1.
    # The first reference alone, or the mean logit (0), would say wrong.
    ("maxref", ["Two.", "There are two cars on the wet road ahead of us."], "no", 1.0),
    # The tokenizer's own CLS token: "<cls>" is 1 token, "no" lands at 12 + 5 + 1 = 18 -> -1. A literal "[CLS]"
    # is 3 tokens ([, CLS, ]) and moves it to 20 -> +1.
    ("cls", ["The road is wet."], "no", 0.0),
    # max_length=128: 150 x "no" then "yes"; truncated, the last token is a "no" at 127 -> -1. Untruncated, "yes"
    # at 12 + 3 + 151 = 166 -> +1.
    ("trunc", ["Two cars."], "no " * 150 + "yes", 0.0),
]
# Score = correct / questions (LingoQA's evaluate.py): 2 of 4.
EXPECTED_SCORE = 0.5


def tiny_classifier(path) -> None:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2ForSequenceClassification, PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                            cls_token="<cls>").save_pretrained(path)
    cfg = GPT2Config(vocab_size=len(WORDS), n_embd=2, n_layer=0, n_head=1, n_positions=256, num_labels=1,
                     pad_token_id=0, bos_token_id=0, eos_token_id=0)
    model = GPT2ForSequenceClassification(cfg)
    with torch.no_grad():
        model.transformer.wte.weight.copy_(torch.tensor([[0.0, 1.0]]).repeat(len(WORDS), 1))
        model.transformer.wte.weight[WORDS.index("yes")] = torch.tensor([1.0, 0.0])
        model.transformer.wpe.weight.zero_()
        model.transformer.wpe.weight[20:100, 0] = 3.0
        model.score.weight.copy_(torch.tensor([[1.0, 0.0]]))
    model.save_pretrained(path)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    path = tmp_path_factory.mktemp("lingo") / "lingo_judge"
    tiny_classifier(path)
    return path


def test_classifier_verdicts_follow_the_benchmark_rules(classifier):
    judge = LingoJudge(str(classifier))
    for _, refs, pred, expected in CASES:
        correct, best = judge.judge(QUESTION, refs, pred)
        assert (float(correct), round(best)) == (expected, 1 if expected else -1), (refs, pred)
    # The stand-in is sensitive to exactly what the rules change (so the test above can fail):
    assert judge.logit(QUESTION, "two cars.", "YES") < 0  # not lower-cased
    assert judge.logit(QUESTION, "two.", "no") < 0  # the first reference alone
    import torch

    literal = "[CLS]\nQuestion: How many cars are there?\nAnswer: the road is wet.\nStudent: no"
    with torch.no_grad():
        assert judge.model(**judge.tokenizer(literal, return_tensors="pt")).logits[0, 0] > 0  # a literal [CLS]
        long = classifier_text("<cls>", QUESTION, "two cars.", "no " * 150 + "yes")
        assert judge.model(**judge.tokenizer(long, return_tensors="pt")).logits[0, 0] > 0  # untruncated


def _lingo_cfg(tmp_path, classifier):
    cfg = OmegaConf.structured(Config)
    cfg.eval = OmegaConf.structured(EvalConfig)
    cfg.paths.root, cfg.captions = str(tmp_path / "out"), str(tmp_path / "cap")
    cfg.eval.metrics, cfg.eval.bootstrap_samples = ["lingoqa"], 100
    cfg.eval.lingo_judge_path = str(classifier)
    return cfg


def test_judge_stage_scores_correct_over_questions(tmp_path, classifier):
    for item_id, refs, pred, _ in CASES:
        # The record's question is the whole user turn; the benchmark's classifier sees the dataset's question.
        write_caption_record(tmp_path / "cap", {
            "id": item_id, "task": "lingoqa", "raw_text": f"<think>Maybe yes.</think>{pred}",
            "parse_status": "not_applicable", "question": f"{INSTRUCTION}\n{QUESTION}",
            "meta": {"question": QUESTION}, "reference": {"answers": refs}})
    cfg = _lingo_cfg(tmp_path, classifier)
    assert "Lingo-Judge classifier" in judge_stage.plan(cfg).render()  # no API key needed
    judge_stage.run(cfg, tmp_path / "run")
    m = json.loads((tmp_path / "run" / "summary.json").read_text())["metrics"]
    assert set(m) == {"lingoqa"}
    assert (m["lingoqa"]["headline"], m["lingoqa"]["correct"], m["lingoqa"]["questions"]) == (EXPECTED_SCORE, 2, 4)
    assert m["lingoqa"]["method"] == "lingo_judge_classifier"
    for item_id, _, _, expected in CASES:
        item = json.loads((tmp_path / "run" / "scores" / f"{item_id}.score.json").read_text())
        assert item["metrics"]["lingoqa"]["value"] == expected, item_id


def test_lingoqa_needs_the_classifier_and_the_llm_substitute_has_its_own_name(tmp_path, classifier):
    write_caption_record(tmp_path / "cap", {"id": "lq", "task": "lingoqa", "raw_text": "x", "question": "q",
                                           "reference": {"answers": ["y"]}})
    cfg = _lingo_cfg(tmp_path, classifier)
    cfg.stage.name = "judge"
    cfg.eval.lingo_judge_path = None
    with pytest.raises(ConfigError) as e:
        check_eval(cfg)
    assert e.value.key == "eval.lingo_judge_path" and "lingoqa_llm" in str(e.value)
    cfg.eval.lingo_judge_path = str(tmp_path / "absent")
    with pytest.raises(ConfigError) as e:
        check_eval(cfg)
    assert e.value.key == "eval.lingo_judge_path"
    cfg.eval.metrics, cfg.eval.lingo_judge_path = ["lingoqa_llm"], None
    check_eval(cfg)  # the substitute needs no classifier (its judge run is tested in test_eval_judge.py)


def test_classifier_text_format():
    assert classifier_text("<s>", "Q?", "ref", "pred") == "<s>\nQuestion: Q?\nAnswer: ref\nStudent: pred"


# ---- the official evaluation parquet and its JPEG-frame segments -------------------------------------------


def _official_set(root):
    """Three questions on two segments as the benchmark ships them: one parquet row per reference answer."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    rows = [("q1", "segA", "Is it raining?", "Yes."), ("q1", "segA", "Is it raining?", "Yes, lightly."),
            ("q2", "segA", "How many cars?", "Two."), ("q3", "segB", "What colour is the light?", "Red."),
            ("q2", "segA", "How many cars?", "There are two cars."), ("q3", "segB", "What colour is the light?", "It is red.")]
    table = pa.table({c: [r[i] for r in rows] for i, c in enumerate(("question_id", "segment_id", "question", "answer"))})
    pq.write_table(table, root / "val.parquet")
    for seg in ("segA", "segB"):
        d = root / "images" / "val" / seg
        d.mkdir(parents=True)
        for i in (0, 1, 2, 3, 10):  # numeric order: 10.jpg is the last frame, not the second
            Image.fromarray(np.full((48, 64, 3), 20 * i, dtype=np.uint8)).save(d / f"{i}.jpg", quality=95)


def test_converter_groups_references_and_segments_are_read_as_frames(tmp_path):
    from cosmos_exp.data.datasets import build_dataset
    from cosmos_exp.data.video import open_video
    from cosmos_exp.stages import prepare

    _official_set(tmp_path)
    cfg = compose_typed(["stage=prepare", "dataset=lingoqa", f"dataset.root={tmp_path}"])
    validate(cfg)
    plan = prepare.plan(cfg).render()
    assert "val.parquet" in plan and "lingoqa.jsonl" in plan
    result = prepare.run(cfg, tmp_path / "run")
    assert result["lingoqa"]["questions"] == 3 and result["lingoqa"]["references"] == 6
    lines = [json.loads(x) for x in (tmp_path / "val" / "lingoqa.jsonl").read_text().splitlines()]
    assert [(x["id"], x["answers"]) for x in lines] == [("q1", ["Yes.", "Yes, lightly."]),
                                                       ("q2", ["Two.", "There are two cars."]),
                                                       ("q3", ["Red.", "It is red."])]
    assert result["data_report"]["val"]["usable"] == 3  # every segment folder opened (dataset.probe_videos)
    samples, _ = build_dataset(cfg.dataset, "val")
    assert samples[0].reference == {"answers": ["Yes.", "Yes, lightly."]} and samples[0].meta["question"] == "Is it raining?"
    with open_video(samples[2].video) as reader:
        assert reader.num_frames == 5
        frames = reader.get_frames([0, 4])
    assert frames.shape == (2, 48, 64, 3) and abs(int(frames[1].mean()) - 200) <= 2  # 10.jpg, decoded by Pillow


def test_converter_refuses_a_parquet_that_is_not_the_evaluation_set(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from cosmos_exp.config.errors import DataError
    from cosmos_exp.data.lingoqa import read_official

    pq.write_table(pa.table({"question_id": ["q1"], "question": ["Q?"], "answer": ["A"]}), tmp_path / "x.parquet")
    with pytest.raises(DataError, match="missing columns \\['segment_id'\\]"):
        read_official(tmp_path / "x.parquet")
    pq.write_table(pa.table({"question_id": ["q1", "q1"], "segment_id": ["s1", "s2"], "question": ["Q?", "Q?"],
                             "answer": ["A", "B"]}), tmp_path / "y.parquet")
    with pytest.raises(DataError, match="question q1 another segment"):
        read_official(tmp_path / "y.parquet")
