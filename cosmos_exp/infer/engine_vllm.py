"""Optional vLLM engine: same items, same outputs, faster decoding on GPU.

UNTESTED here: vllm is not installed in this environment (it needs CUDA). Frames are decoded and
sampled by the data package exactly as for training (Qwen3-VL gets their metadata for its timestamps);
resizing is left to vLLM's copy of the official processor, bounded by the same pixels per frame. The
official processors match ours bit for bit (tests/test_data_golden.py), so answers should match the
transformers engine up to kernel differences.
"""

from typing import Any, Dict, List, Optional, Sequence

from cosmos_exp.config.generation import GenerationConfig
from cosmos_exp.config.data import VisionConfig
from cosmos_exp.infer.engine import Generated, batch_seed


class VLLMEngine:
    name = "vllm"

    def __init__(self, model_dir: str, generation: GenerationConfig, vision: VisionConfig, dtype: str = "auto",
                 model_max_length: Optional[int] = None) -> None:
        try:
            import vllm
        except ImportError as exc:
            raise RuntimeError(
                "generation.engine=vllm but the vllm package cannot be imported "
                f"({exc}); install it (pip install 'cosmos_exp[vllm]') on a CUDA machine, "
                "or use generation.engine=transformers"
            ) from exc
        from cosmos_exp.data.processor import Processor

        self.gen = generation
        self.vision = vision
        self.processor = Processor.from_pretrained(model_dir, model_max_length)  # tokenizer + chat template
        self._vllm = vllm
        self.llm = vllm.LLM(
            model=model_dir,
            dtype="auto" if dtype == "auto" else dtype,
            seed=generation.seed,
            gpu_memory_utilization=generation.vllm_gpu_memory_utilization,
            max_model_len=generation.vllm_max_model_len or model_max_length,
            limit_mm_per_prompt={"video": 1},
        )

    def settings(self) -> Dict[str, Any]:
        return {"device": "cuda", "vllm_version": getattr(self._vllm, "__version__", "?"),
                "family": self.processor.family}

    def prepare(self, conversation: List[Dict[str, Any]]) -> Dict[str, Any]:
        from cosmos_exp.data.sampling import sample_frames
        from cosmos_exp.data.video import open_video

        video = _video_part(conversation)
        with open_video(video["video"], backend=self.vision.backend) as reader:
            indices, _ = sample_frames(reader.num_frames, reader.fps, self.vision,
                                       temporal_patch_size=self.processor.spec.temporal_patch_size)
            frames = reader.get_frames(indices)
            total, fps = reader.num_frames, reader.fps
        return {
            # The same chat text our transformers engine tokenises (one unexpanded <|video_pad|>).
            "prompt": self.processor.prompt_text(conversation, add_generation_prompt=True),
            "multi_modal_data": {"video": self._video_input(frames, indices, total, fps)},
            "mm_processor_kwargs": self._processor_kwargs(len(indices)),
        }

    def _video_input(self, frames: Any, indices: List[int], total: int, fps: float) -> Any:
        """Frames are already sampled; Qwen3-VL also needs where they came from, for its timestamps."""
        if self.processor.family != "qwen3_vl":
            return frames
        metadata = {"fps": fps, "frames_indices": list(indices), "total_num_frames": total,
                    "duration": total / fps if fps else None, "video_backend": self.vision.backend}
        return (frames, metadata)

    def _processor_kwargs(self, num_frames: int) -> Dict[str, Any]:
        """Our pixel bounds are per frame; the Qwen3-VL video processor bounds the whole clip."""
        scale = num_frames if self.processor.family == "qwen3_vl" else 1
        return {"do_sample_frames": False,
                "size": {"shortest_edge": self.vision.min_pixels * scale, "longest_edge": self.vision.max_pixels * scale}}

    def generate(self, requests: List[Dict[str, Any]], item_ids: Sequence[str]) -> List[Generated]:
        g = self.gen
        params = self._vllm.SamplingParams(
            max_tokens=g.max_new_tokens,
            temperature=g.temperature if g.do_sample else 0.0,
            top_p=g.top_p if g.do_sample else 1.0,
            repetition_penalty=g.repetition_penalty,
            seed=batch_seed(g.seed, item_ids) if g.do_sample else None,
        )
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        return [Generated(text=o.outputs[0].text, num_tokens=len(o.outputs[0].token_ids),
                          token_ids=tuple(o.outputs[0].token_ids)) for o in outputs]


def _video_part(conversation: List[Dict[str, Any]]) -> Dict[str, Any]:
    for turn in conversation:
        content = turn.get("content")
        if isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") == "video":
                    return part
    raise ValueError("conversation has no video part")
