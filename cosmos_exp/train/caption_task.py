"""task=caption: the Hugging Face vision-language model learns the answer text (cross-entropy on the answer
tokens of the dataset's conversations). The interface is train/task.py's."""

from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from cosmos_exp.config.schema import Config
from cosmos_exp.train import data as train_data
from cosmos_exp.train.task import TaskData


class CaptionTask:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.processor: Any = None

    def load_data(self, rank: int, world: int) -> TaskData:
        cfg = self.cfg
        self.processor = train_data.load_processor(cfg)
        samples, report = train_data.load_split(cfg, cfg.dataset.train_split)
        samples = train_data.training_order(cfg, samples)
        held_out: List[Dict[str, Any]] = []
        videos = {cfg.dataset.train_split: [s.video for s in samples]}
        if cfg.train.eval_every:
            eval_samples, _ = train_data.load_split(cfg, cfg.dataset.eval_split)
            held_out = train_data.eval_batches(cfg, eval_samples, self.processor, rank, world)
            videos[cfg.dataset.eval_split] = [s.video for s in eval_samples]
        return TaskData(self.processor, samples, report, held_out, videos)

    def train_stream(self, data: TaskData, rank: int, world: int, start_micro_step: int) -> Any:
        return train_data.train_stream(self.cfg, data.train, data.processor, rank, world, start_micro_step)

    def build_model(self, on_gpu: bool) -> Tuple[Any, List[str]]:
        from cosmos_exp.models.loading import load_model
        from cosmos_exp.train.optim import apply_freeze

        cfg = self.cfg
        model = load_model(cfg.model.path, dtype="float32", attn_implementation=cfg.model.attn_implementation)
        frozen = apply_freeze(model, list(cfg.train.freeze))
        if cfg.train.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            model.config.use_cache = False
        return model, frozen

    def loss_units(self, batch: Dict[str, Any]) -> int:
        return train_data.answer_tokens(batch)

    def write_model(self, module: Any, out_dir: Path, full_state: Optional[Dict[str, Any]]) -> None:
        from cosmos_exp.models.loading import write_hf_files

        write_hf_files(module, self.processor, out_dir, state_dict=full_state)
