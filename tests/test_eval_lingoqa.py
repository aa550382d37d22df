"""LingoQA with a Lingo-Judge-shaped classifier loaded from a local directory (a tiny random DeBERTa-v2
sequence classifier whose output bias decides the verdict), and the summary saying which scorer was used."""

import json
import os

import pytest
from omegaconf import OmegaConf

from _judge_server import write_caption_record
from cosmos_exp.config import ConfigError
from cosmos_exp.config.validate import check_eval
from cosmos_exp.config.evaluation import EvalConfig
from cosmos_exp.config.schema import Config
from cosmos_exp.stages import judge as judge_stage
from cosmos_exp.evaluate.lingoqa import classifier_text


def tiny_classifier(path, bias: float) -> None:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import DebertaV2Config, DebertaV2ForSequenceClassification, PreTrainedTokenizerFast

    torch.manual_seed(0)
    words = "[PAD] [UNK] [CLS] [SEP] question answer student how many cars are there 0 1 2 i see".split()
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                            cls_token="[CLS]", sep_token="[SEP]").save_pretrained(path)
    cfg = DebertaV2Config(vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                          intermediate_size=32, max_position_embeddings=64, num_labels=1, pad_token_id=0)
    model = DebertaV2ForSequenceClassification(cfg)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.fill_(bias)
    model.save_pretrained(path)


@pytest.mark.parametrize("bias,expected", [(5.0, 1.0), (-5.0, 0.0)])
def test_lingo_judge_classifier_from_local_path(tmp_path, bias, expected):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    tiny_classifier(tmp_path / "lingo_judge", bias)
    for i in range(3):
        write_caption_record(tmp_path / "cap", {"id": f"lq{i}", "task": "lingoqa", "raw_text": f"I see {i} cars",
                                               "parse_status": "not_applicable", "question": "How many cars are there?",
                                               "reference": {"answers": [f"{i} cars", "there are cars"]}})
    cfg = OmegaConf.structured(Config)
    cfg.eval = OmegaConf.structured(EvalConfig)
    cfg.paths.root = str(tmp_path / "out")
    cfg.captions = str(tmp_path / "cap")
    cfg.eval.metrics = ["lingoqa"]
    cfg.eval.lingo_judge_path = str(tmp_path / "lingo_judge")
    assert "lingo_judge_classifier" in judge_stage.plan(cfg).render()  # no API key needed
    judge_stage.run(cfg, tmp_path / "run")
    m = json.loads((tmp_path / "run" / "summary.json").read_text())["metrics"]["lingoqa"]
    assert m["method"] == "lingo_judge_classifier" and m["accuracy"]["mean"] == expected
    item = json.loads((tmp_path / "run" / "scores" / "lq1.score.json").read_text())["metrics"]["lingoqa"]
    assert item["best_logit"] == pytest.approx(bias, abs=1e-4)


def test_missing_classifier_path_is_a_config_error(tmp_path):
    write_caption_record(tmp_path / "cap", {"id": "lq", "task": "lingoqa", "raw_text": "x", "question": "q",
                                           "reference": {"answers": ["y"]}})
    cfg = OmegaConf.structured(Config)
    cfg.eval = OmegaConf.structured(EvalConfig)
    cfg.captions = str(tmp_path / "cap")
    cfg.eval.metrics = ["lingoqa"]
    cfg.eval.lingo_judge_path = str(tmp_path / "absent")
    with pytest.raises(ConfigError) as e:
        check_eval(cfg)
    assert e.value.key == "eval.lingo_judge_path"


def test_classifier_text_format():
    assert classifier_text("Q?", "ref", "pred") == "[CLS]\nQuestion: Q?\nAnswer: ref\nStudent: pred"
