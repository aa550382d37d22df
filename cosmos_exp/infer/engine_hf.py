"""Batched generation with transformers: our Processor encodes each item, batches are padded left.

The preprocessing is the data package's Processor, the same one training uses; the model class is
chosen by the checkpoint's config.json (models.loading). Imported only by a running caption stage.
"""

from typing import Any, Dict, List, Optional, Sequence

from cosmos_exp.config.generation import GenerationConfig
from cosmos_exp.config.data import VisionConfig
from cosmos_exp.infer.engine import Generated, batch_seed, resolve_device


class HFEngine:
    name = "transformers"

    def __init__(self, model_dir: str, generation: GenerationConfig, vision: VisionConfig, dtype: str = "auto",
                 attn_implementation: str = "sdpa", model_max_length: Optional[int] = None) -> None:
        import torch

        from cosmos_exp.data.processor import Processor
        from cosmos_exp.models.loading import load_model

        self.device = resolve_device(generation.device)
        self.gen = generation
        self.vision = vision
        self.processor = Processor.from_pretrained(model_dir, model_max_length=model_max_length)
        self.model = load_model(model_dir, dtype=dtype, device=self.device, attn_implementation=attn_implementation)
        self.model.eval()
        self.dtype = str(next(self.model.parameters()).dtype).replace("torch.", "")
        tok = self.processor.tokenizer
        stop = {tok.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")}
        configured = self.model.generation_config.eos_token_id
        stop |= set(configured if isinstance(configured, list) else [configured] if configured is not None else [])
        self.stop_ids = sorted(i for i in stop if isinstance(i, int) and i >= 0)
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else self.stop_ids[0]
        self._torch = torch

    def settings(self) -> Dict[str, Any]:
        """What could change an answer besides the prompt and weights, for the record."""
        return {"device": self.device, "dtype": self.dtype, "family": self.processor.family}

    def prepare(self, conversation: List[Dict[str, Any]]) -> Dict[str, Any]:
        """Encode one item; raises the data package's VideoError / ValueError for a bad item."""
        return self.processor.encode(conversation, self.vision, add_generation_prompt=True)

    def _generation_config(self) -> Any:
        from transformers import GenerationConfig

        g = self.gen
        kwargs: Dict[str, Any] = dict(max_new_tokens=g.max_new_tokens, do_sample=g.do_sample,
                                      repetition_penalty=g.repetition_penalty,
                                      eos_token_id=self.stop_ids, pad_token_id=self.pad_id)
        if g.do_sample:
            kwargs.update(temperature=g.temperature, top_p=g.top_p, top_k=0)
        else:  # say so explicitly, so a checkpoint's generation_config.json cannot switch sampling on
            kwargs.update(temperature=None, top_p=None, top_k=None)
        return GenerationConfig(**kwargs)

    def generate(self, features: List[Dict[str, Any]], item_ids: Sequence[str]) -> List[Generated]:
        torch = self._torch
        batch = self.processor.collate(features, padding_side="left")
        batch.pop("labels", None)
        batch = {k: v.to(self.device) if hasattr(v, "to") else v for k, v in batch.items()}
        if self.gen.do_sample:
            torch.manual_seed(batch_seed(self.gen.seed, item_ids))
        with torch.inference_mode():
            out = self.model.generate(**batch, generation_config=self._generation_config())
        new = out[:, batch["input_ids"].shape[1]:].tolist()
        results = []
        for row in new:
            n = _length_until_stop(row, self.stop_ids)
            text = self.processor.tokenizer.decode(row[:n], skip_special_tokens=True)
            results.append(Generated(text=text, num_tokens=n, token_ids=tuple(row[:n])))
        return results


def _length_until_stop(row: List[int], stop_ids: Sequence[int]) -> int:
    """Generated tokens before the first stop token (what follows it is padding)."""
    stops = set(stop_ids)
    for i, token in enumerate(row):
        if token in stops:
            return i
    return len(row)
