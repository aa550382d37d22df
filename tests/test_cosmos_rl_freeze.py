"""train.freeze on cosmos-rl: each pattern freezes, in cosmos-rl's parameter names, the very parameters it
freezes on our loop, for tiny Qwen2.5-VL and Qwen3-VL models built the way cosmos-rl builds them; a pattern
that matches nothing, or that cannot be said in its names, is refused."""

import re
from typing import Set

import pytest
import torch
from torch import nn

from cosmos_exp.config import ConfigError
from cosmos_exp.models.loading import load_model
from cosmos_exp.train.cosmos_rl.freeze import checkpoint_keys, cosmos_rl_name, freeze_patterns, our_names
from cosmos_exp.train.optim import apply_freeze


def as_cosmos_rl_builds_it(hf: nn.Module, family: str) -> nn.Module:
    """The module tree cosmos-rl 0.4.7 trains, sharing the HF model's parameters. Qwen3-VL: the transformers
    model itself (policy/model/hf_models: HFModel.named_parameters is the wrapped model's). Qwen2.5-VL: its own
    Qwen2_5_VLConditionalModel (policy/model/qwen2_5_vl): `visual` (the vision tower, HF's submodule names) and
    `model` = Qwen2_5_VLModel holding embed_tokens, layers (a ModuleDict keyed "0", "1", ...), norm and lm_head."""
    if family == "qwen3_vl":
        return hf
    lm = hf.model.language_model
    root, model = nn.Module(), nn.Module()
    root.visual = hf.model.visual
    model.embed_tokens = lm.embed_tokens
    model.layers = nn.ModuleDict({str(i): layer for i, layer in enumerate(lm.layers)})
    model.norm = lm.norm
    if hf.lm_head.weight is not lm.embed_tokens.weight:
        model.lm_head = hf.lm_head
    root.model = model
    return root


def frozen_by_cosmos_rl(model: nn.Module, regexes) -> Set[int]:
    """What cosmos-rl's apply_freeze_pattern freezes: parameters whose name some regex re.search-es."""
    return {id(p) for name, p in model.named_parameters() if any(re.search(r, name) for r in regexes)}


def frozen_by_us(hf: nn.Module, patterns) -> Set[int]:
    apply_freeze(hf, patterns)
    frozen = {id(p) for p in hf.parameters() if not p.requires_grad}
    for p in hf.parameters():
        p.requires_grad_(True)
    return frozen


PATTERNS = [["model.visual.*"], ["*.bias"], ["model.language_model.layers.0.*", "lm_head.*"],
            ["model.visual.blocks.*.attn.*", "model.language_model.embed_tokens.*"], ["*norm*"]]


@pytest.mark.parametrize("family", ["tiny_qwen2_5_vl", "tiny_qwen3_vl"])
def test_patterns_freeze_the_same_parameters_in_cosmos_rl(prepared, family):
    model_dir = prepared[family]
    family_name = family.removeprefix("tiny_")
    hf = load_model(model_dir)
    theirs = as_cosmos_rl_builds_it(hf, family_name)
    # The names read from the checkpoint, mapped, are the names of the model cosmos-rl builds.
    names = our_names(family_name, checkpoint_keys(model_dir))
    assert sorted(names) == sorted(n for n, _ in hf.named_parameters())
    assert sorted(cosmos_rl_name(family_name, n) for n in names) == sorted(n for n, _ in theirs.named_parameters())
    for patterns in PATTERNS:
        regexes = freeze_patterns(family_name, patterns, model_dir)
        wanted = frozen_by_us(hf, patterns)
        assert wanted and frozen_by_cosmos_rl(theirs, regexes) == wanted, patterns


def test_the_names_differ_where_cosmos_rl_renames(prepared):
    """What the plain fnmatch translation used to emit matches nothing in cosmos-rl's Qwen2.5-VL (it would have
    trained the vision tower silently); the translated one freezes exactly it."""
    import fnmatch

    hf = load_model(prepared["tiny_qwen2_5_vl"])
    theirs = as_cosmos_rl_builds_it(hf, "qwen2_5_vl")
    assert frozen_by_cosmos_rl(theirs, ["^" + fnmatch.translate("model.visual.*")]) == set()
    (regex,) = freeze_patterns("qwen2_5_vl", ["model.visual.*"], prepared["tiny_qwen2_5_vl"])
    assert frozen_by_cosmos_rl(theirs, [regex]) == {id(p) for p in hf.model.visual.parameters()}


@pytest.mark.parametrize("family,pattern,words", [
    ("tiny_qwen2_5_vl", "visual.*", "matches no parameter of the model (names look like: "),
    ("tiny_qwen3_vl", "model.vision_tower.*", "matches no parameter"),
    ("tiny_qwen2_5_vl", "model.*", "cannot be said in cosmos-rl's parameter names for qwen2_5_vl (it would miss "
                                   "visual."),
    ("tiny_qwen2_5_vl", "*", "freeze every parameter"),
])
def test_a_pattern_that_cannot_work_is_refused(prepared, family, pattern, words):
    with pytest.raises(ConfigError) as err:
        freeze_patterns(family.removeprefix("tiny_"), [pattern], prepared[family])
    assert err.value.key == "train.freeze" and words in str(err.value)


def test_a_model_without_weights_is_named(tmp_path):
    with pytest.raises(ConfigError, match="no safetensors weights"):
        freeze_patterns("qwen3_vl", ["model.visual.*"], tmp_path)


def test_tied_embeddings_have_no_lm_head_in_either_tree(prepared):
    hf = load_model(prepared["tiny_qwen2_5_vl"])
    hf.lm_head.weight = hf.model.language_model.embed_tokens.weight  # as with tie_word_embeddings
    names = {n for n, _ in as_cosmos_rl_builds_it(hf, "qwen2_5_vl").named_parameters()}
    assert not any("lm_head" in n for n in names) and torch.is_tensor(hf.lm_head.weight)
