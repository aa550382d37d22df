"""Random-initialised test models of the real Qwen2.5-VL / Qwen3-VL architectures.

`build_tiny_model` writes a complete Hugging Face directory: weights + config, a locally trained
byte-level BPE tokenizer with Qwen's special tokens and chat template, and the official-format
processor files. Everything is deterministic by `tiny.seed`, so two builds give identical files.
`build_shaped_model` writes the same files for a given (real) architecture config: random weights of the real
size behind the tiny tokenizer, for benchmarks.
Heavy imports (torch, transformers, tokenizers) stay inside functions.
"""

import json
from pathlib import Path
from typing import Dict, List, Union

from cosmos_exp.config.model import TinyModelConfig
from cosmos_exp.repro.atomic import atomic_directory

FAMILIES = ("qwen2_5_vl", "qwen3_vl")

# Qwen's special tokens; the first ids of the vocabulary, in this order.
SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|video_pad|>",
    "<|image_pad|>",
]

# Qwen-style turns; video / image content becomes <|vision_start|><|..._pad|><|vision_end|>.
# The processor expands each pad token into the clip's vision tokens.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['content'] is string -%}"
    "{{ message['content'] }}"
    "{%- else -%}"
    "{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'video' or 'video' in item -%}"
    "{{ '<|vision_start|><|video_pad|><|vision_end|>' }}"
    "{%- elif item['type'] == 'image' or 'image' in item -%}"
    "{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{%- elif item['type'] == 'text' -%}"
    "{{ item['text'] }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{{ '<|im_end|>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)

# Official processor files of each family: the shared fields, then what differs (patch size, normalisation,
# pixel bounds, processor classes), as in the public Qwen2.5-VL / Qwen3-VL checkpoints.
def _processor_file(kind: str, processor_class: str, patch: int, mean: List[float], std: List[float],
                    size: Dict[str, int], **extra: object) -> dict:
    return {f"{kind}_processor_type": extra.pop("type"), "processor_class": processor_class, "do_resize": True,
            "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True, "do_convert_rgb": True,
            "image_mean": mean, "image_std": std, "size": size, "patch_size": patch, "temporal_patch_size": 2,
            "merge_size": 2, **extra}


_CLIP_MEAN, _CLIP_STD = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]
_QWEN25_PIXELS = {"min_pixels": 3136, "max_pixels": 12845056}
_QWEN25_SIZE = {"shortest_edge": 3136, "longest_edge": 12845056}
_PROCESSOR_FILES: Dict[str, Dict[str, dict]] = {
    "qwen2_5_vl": {
        "preprocessor_config.json": _processor_file("image", "Qwen2_5_VLProcessor", 14, _CLIP_MEAN, _CLIP_STD,
                                                    _QWEN25_SIZE, type="Qwen2VLImageProcessor", **_QWEN25_PIXELS),
        "video_preprocessor_config.json": _processor_file("video", "Qwen2_5_VLProcessor", 14, _CLIP_MEAN, _CLIP_STD,
                                                          _QWEN25_SIZE, type="Qwen2VLVideoProcessor", **_QWEN25_PIXELS),
    },
    "qwen3_vl": {
        "preprocessor_config.json": _processor_file("image", "Qwen3VLProcessor", 16, [0.5] * 3, [0.5] * 3,
                                                    {"shortest_edge": 65536, "longest_edge": 16777216},
                                                    type="Qwen2VLImageProcessorFast"),
        "video_preprocessor_config.json": _processor_file("video", "Qwen3VLProcessor", 16, [0.5] * 3, [0.5] * 3,
                                                          {"shortest_edge": 4096, "longest_edge": 25165824},
                                                          type="Qwen3VLVideoProcessor", fps=2, min_frames=4,
                                                          max_frames=768),
    },
}

# A small built-in corpus so that driving captions (and their JSON wrapping) tokenize compactly.
_CAPTION_KEYS = [
    "weather", "lighting", "road_conditions", "traffic_light", "traffic_sign",
    "additional_traffic_rules", "road_type", "junction_type", "lane_type", "additional_map_rules",
    "interactive_expanded_metaaction", "safety_analysis", "driving_difficulty", "rule_violation",
    "interesting_scenario",
]
_CORPUS_SENTENCES = [
    "The ego vehicle proceeds straight on the right lane of a two-lane road during the daytime.",
    "The weather is clear and sunny with dry road conditions and good visibility.",
    "Light rain falls and the wet surface has puddles near the curb.",
    "At night the street lights illuminate the intersection ahead of the ego vehicle.",
    "A pedestrian crosses the road in front of the ego, which slows down and yields.",
    "The traffic light turns red and the ego vehicle stops behind the white stop line.",
    "A cyclist rides in the bike lane on the right side of the street.",
    "The ego vehicle follows a truck at a safe distance on the highway.",
    "A car merges from the left lane and the ego vehicle brakes gently.",
    "The road is a collector road with frequent driveways and intersections.",
    "Straight segment with no intersections or turns; single lane each direction.",
    "A stop sign, a speed limit sign and a no parking sign are visible.",
    "The ego turns left at the four-way junction after yielding to oncoming traffic.",
    "Construction cones narrow the lane and a worker signals with a flag.",
    "Fog reduces visibility and the ego vehicle drives slowly with headlights on.",
    "Snow covers the shoulder; the lane markings are partly hidden.",
    "Vehicle following, yield to VRUs, lane change to the left, stop at red light.",
    "Describe the driving scene in the video as a JSON object with the keys below.",
    "You are a helpful assistant that watches dash camera videos and explains driving safety.",
    "Which option best describes the action of the ego vehicle? Answer with a letter.",
    "A. The ego vehicle turns right. B. The ego vehicle stops. C. It accelerates. D. It reverses.",
    "Is it safe to overtake the bus now? No, because a pedestrian is crossing.",
    "True False N/A null 1 2 3 4 0.5 10 20 30 60 100",
    "system user assistant",
]


def _corpus() -> List[str]:
    lines = list(_CORPUS_SENTENCES)
    for key in _CAPTION_KEYS:
        lines.append(f'"{key}": "N/A",')
        lines.append(f'{{"{key}": null, "{key}": ["a", "b"], "{key}": 3}}')
    lines.append("```json\n{\n  \"weather\": \"Clear\",\n  \"driving_difficulty\": 2\n}\n```")
    # Repeat so that merges of common words win over rare ones.
    return lines * 4


def _train_tokenizer(vocab_size: int):
    """A byte-level BPE trained on the built-in corpus, wrapped as a fast HF tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[1:],
        model_max_length=32768,
        padding_side="right",
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def tiny_config(family: str, tiny: TinyModelConfig, ids: Dict[str, int], vocab_size: int):
    """The transformers config of a tiny `family` model with these special-token ids."""
    head_dim = tiny.hidden_size // tiny.num_heads
    half = head_dim // 2
    # Multimodal rope splits head_dim/2 into temporal, height, width sections.
    mrope = [half - 2 * (half // 4), half // 4, half // 4]
    text = dict(
        vocab_size=vocab_size,
        hidden_size=tiny.hidden_size,
        intermediate_size=tiny.intermediate_size,
        num_hidden_layers=tiny.num_layers,
        num_attention_heads=tiny.num_heads,
        num_key_value_heads=tiny.num_kv_heads,
        max_position_embeddings=32768,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": mrope},
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
    )
    vision = dict(
        depth=tiny.vision_depth,
        hidden_size=tiny.vision_hidden_size,
        intermediate_size=tiny.vision_hidden_size * 2,
        num_heads=tiny.vision_num_heads,
        out_hidden_size=tiny.hidden_size,
        spatial_merge_size=2,
        temporal_patch_size=2,
    )
    tokens = dict(
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    if family == "qwen2_5_vl":
        from transformers import Qwen2_5_VLConfig

        vision.update(patch_size=14, window_size=112, fullatt_block_indexes=[tiny.vision_depth - 1])
        return Qwen2_5_VLConfig(text_config=text, vision_config=vision, **tokens)
    from transformers import Qwen3VLConfig

    text["head_dim"] = head_dim
    text["rope_parameters"]["mrope_interleaved"] = True
    vision.update(
        patch_size=16,
        num_position_embeddings=576,  # a 24x24 grid, interpolated to the clip's size
        deepstack_visual_indexes=[0],
        hidden_act="gelu_pytorch_tanh",
    )
    return Qwen3VLConfig(text_config=text, vision_config=vision, **tokens)


def _write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def build_tiny_model(family: str, out_dir: Union[str, Path], tiny: TinyModelConfig) -> Path:
    """Write a random-initialised `family` checkpoint (HF format) with tokenizer and processor files.

    The directory is built next to `out_dir` and renamed into place, so it is complete or absent.
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; expected one of {FAMILIES}")
    tokenizer = _train_tokenizer(tiny.vocab_size)
    ids = _special_ids(tokenizer)
    config = tiny_config(family, tiny, ids, len(tokenizer))
    return _write_random_model(family, config, tokenizer, ids, out_dir, tiny.seed, "float32", "cpu")


def build_shaped_model(config, out_dir: Union[str, Path], seed: int = 0, dtype: str = "float32",
                       device: str = "cpu") -> Path:
    """A random-initialised checkpoint of `config`'s shape (a real model's, cosmos_exp/models/shapes.py) with the
    tiny tokenizer, for benchmarks of real sizes where nothing can be downloaded. The config's special-token ids
    become the tokenizer's; its vocabulary (the embedding and logits rows) stays the real one, so the model
    computes what the real one does, while the text it writes decodes only where it picks one of the tokenizer's
    ids. `device` is where the weights are drawn (a GPU draws billions in a moment); they are written in `dtype`."""
    family = config.model_type
    if family not in FAMILIES:
        raise ValueError(f"model_type {family!r} is not one of {FAMILIES}")
    tokenizer = _train_tokenizer(TinyModelConfig().vocab_size)
    ids = _special_ids(tokenizer)
    if config.text_config.vocab_size < len(tokenizer):
        raise ValueError(f"vocab_size {config.text_config.vocab_size} is smaller than the tokenizer's {len(tokenizer)}")
    for key, token in (("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"),
                       ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>")):
        setattr(config, key, ids[token])
    text = config.text_config
    text.bos_token_id, text.eos_token_id, text.pad_token_id = ids["<|endoftext|>"], ids["<|im_end|>"], ids["<|endoftext|>"]
    return _write_random_model(family, config, tokenizer, ids, out_dir, seed, dtype, device)


def _special_ids(tokenizer) -> Dict[str, int]:
    return {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}


def _write_random_model(family: str, config, tokenizer, ids: Dict[str, int], out_dir: Union[str, Path], seed: int,
                        dtype: str, device: str) -> Path:
    import torch
    from transformers import AutoModelForImageTextToText, GenerationConfig

    from cosmos_exp.models.loading import resolve_dtype

    out = Path(out_dir).resolve()
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForImageTextToText.from_config(config, dtype=resolve_dtype(dtype, device))
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
        pad_token_id=ids["<|endoftext|>"],
        do_sample=False,
    )

    with atomic_directory(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for name, content in _PROCESSOR_FILES[family].items():
            _write_json(tmp / name, content)
    return out
