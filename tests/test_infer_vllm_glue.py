"""The vLLM engine's glue, against a stand-in `vllm` module (vllm itself needs CUDA and is not installed
here): what we hand vLLM must be the same prompt, frames and pixel bounds as our transformers path."""

import sys
import types

import pytest
from omegaconf import OmegaConf

from cosmos_exp.config.data import VisionConfig
from cosmos_exp.config.generation import GenerationConfig
from cosmos_exp.data.conversation import build_conversation
from cosmos_exp.data.processor import Processor


class _FakeOutput:
    def __init__(self, text):
        self.outputs = [types.SimpleNamespace(text=text, token_ids=[1, 2, 3])]


@pytest.fixture
def fake_vllm(monkeypatch):
    calls = {}

    class LLM:
        def __init__(self, **kwargs):
            calls["init"] = kwargs

        def generate(self, requests, params, use_tqdm=False):
            calls["requests"], calls["params"] = requests, params
            return [_FakeOutput(f"answer {i}") for i in range(len(requests))]

    module = types.SimpleNamespace(LLM=LLM, SamplingParams=lambda **kw: kw, __version__="stand-in")
    monkeypatch.setitem(sys.modules, "vllm", module)
    return calls


@pytest.mark.parametrize("family", ["tiny_qwen2_5_vl", "tiny_qwen3_vl"])
def test_vllm_requests_match_our_preprocessing(fake_vllm, prepared, family):
    from cosmos_exp.infer.engine_vllm import VLLMEngine

    vision = VisionConfig(nframes=4, min_frames=2, min_pixels=3136, max_pixels=16384)
    gen = OmegaConf.structured(GenerationConfig(engine="vllm", max_new_tokens=7, seed=3))
    engine = VLLMEngine(str(prepared[family]), gen, vision, model_max_length=2048)
    assert fake_vllm["init"]["model"] == str(prepared[family]) and fake_vllm["init"]["seed"] == 3

    video = str(next((prepared["data"] / "eval" / "videos").iterdir()))
    conv = build_conversation("system text", "describe", video, vision, None)
    request = engine.prepare(conv)
    ours = Processor.from_pretrained(prepared[family])
    assert request["prompt"] == ours.prompt_text(conv, add_generation_prompt=True)
    ours_video = ours.encode_video(video, vision)
    kwargs = request["mm_processor_kwargs"]
    assert kwargs["do_sample_frames"] is False  # frames are sampled once, by us
    if ours.family == "qwen3_vl":
        frames, meta = request["multi_modal_data"]["video"]
        assert meta["frames_indices"] == ours_video["indices"] and meta["fps"] == ours_video["video_fps"]
        assert kwargs["size"]["longest_edge"] == vision.max_pixels * len(ours_video["indices"])
    else:
        frames = request["multi_modal_data"]["video"]
        assert kwargs["size"]["longest_edge"] == vision.max_pixels
    assert frames.shape[0] == len(ours_video["indices"])

    out = engine.generate([request], ["item_a"])
    assert out[0].text == "answer 0" and out[0].num_tokens == 3
    assert fake_vllm["params"]["max_tokens"] == 7 and fake_vllm["params"]["temperature"] == 0.0
