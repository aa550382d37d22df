"""The baseline of the SFT part: the Hugging Face Trainer on the same model files, clips, processor, batch size,
gradient checkpointing and fused AdamW as our loop.

    python -m gpu_check.hf_trainer <spec.json> <result.json>     (started by gpu_check.sft)

Mixed precision as the Trainer documents it: float32 weights (as our loop loads them) under bf16 autocast
(`bf16=True`), so both keep float32 master weights; pure-bf16 weights would be faster but lose updates at the
recipe's learning rate. Data: a map-style dataset whose item i is our processor's encoding of clip i, batched by
our collate, in `dataloader_num_workers` workers like our loader. Timing: wall clock from the end of the last
warm-up step to the end of the last step (the device synchronised only at those two points, so the Trainer runs
as it would), over micro-batch x timed steps samples.
"""

import json
import resource
import sys
import tempfile
import time
from pathlib import Path


def main(spec_path: str, result_path: str) -> None:
    import torch
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from cosmos_exp.data.datasets import build_dataset
    from cosmos_exp.data.processor import Processor
    from cosmos_exp.models.loading import load_model
    from cosmos_exp.repro.atomic import write_json_atomic
    from gpu_check.assets import clip_dataset
    from gpu_check.presets import REAL, SMOKE

    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    preset = {p.name: p for p in (REAL, SMOKE)}[spec["preset"]]
    on_gpu = torch.cuda.is_available()
    processor = Processor.from_pretrained(spec["model"], model_max_length=preset.model_max_length)
    samples, _ = build_dataset(clip_dataset(Path(spec["clips"]), preset), "train")
    vision = preset.vision()

    class Clips(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(samples)

        def __getitem__(self, i: int) -> dict:
            return processor.encode(samples[i].conversation, vision)

    model = load_model(spec["model"], dtype="float32", device="cuda" if on_gpu else "cpu")
    model.config.use_cache = False
    warm, timed = preset.warmup_steps, preset.timed_steps
    marks = {}

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step in (warm, warm + timed):
                if on_gpu:
                    torch.cuda.synchronize()
                marks[state.global_step] = time.perf_counter()

    args = TrainingArguments(
        output_dir=tempfile.mkdtemp(prefix="gpu_check_trainer_"), per_device_train_batch_size=preset.micro_batch,
        gradient_accumulation_steps=1, max_steps=warm + timed, learning_rate=1e-5, weight_decay=0.01,
        lr_scheduler_type="constant", max_grad_norm=1.0, optim="adamw_torch_fused" if on_gpu else "adamw_torch",
        bf16=on_gpu, gradient_checkpointing=True, gradient_checkpointing_kwargs={"use_reentrant": False},
        dataloader_num_workers=preset.num_workers, remove_unused_columns=False, report_to=[], logging_steps=10**9,
        save_strategy="no", disable_tqdm=True, seed=0)
    Trainer(model=model, args=args, train_dataset=Clips(), data_collator=processor.collate,
            callbacks=[Clock()]).train()
    seconds = marks[warm + timed] - marks[warm]
    peak = (torch.cuda.max_memory_allocated() / 2**30 if on_gpu
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
    write_json_atomic(Path(result_path), {"steps_timed": timed, "seconds": seconds,
                                          "samples": timed * preset.micro_batch, "peak_memory_gb": peak})


if __name__ == "__main__":
    main(*sys.argv[1:3])
