"""What stage=sft trains, as the DeepSpeed loop sees it: one object per task with the same few methods.

    deepspeed_loop.build_task(cfg) -> CaptionTask | TrajectoryTask    (the one branch on cfg.task.kind)

    task.load_data(rank, world) -> TaskData                   processor, train items, data report, held-out batches
    task.train_stream(data, rank, world, start_micro_step)    resumable batches (state_dict / load_state_dict)
    task.build_model(on_gpu) -> (module, frozen names)        what DeepSpeed wraps; module(**batch).loss is the
                                                              mean loss of a micro-batch; requires_grad set
    task.loss_units(batch) -> int                             what the mean is over (answer tokens, action tokens),
                                                              so micro-batches and ranks weigh by it
    task.write_model(module, out_dir, full_state)             the loadable model files of a checkpoint (rank 0)

caption: train/caption_task.py; trajectory: train/trajectory_task.py.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List


@dataclass
class TaskData:
    processor: Any
    train: list  # the train split's items, in a fixed order (the stream permutes them by seed and epoch)
    report: Any  # a cosmos_exp.data.datasets.DataReport of the train split (to_dict, summary)
    held_out: List[Dict[str, Any]] = field(default_factory=list)  # fixed eval batches of this rank
    videos: Dict[str, List[str]] = field(default_factory=dict)  # split -> the clips it reads, for the fingerprints

