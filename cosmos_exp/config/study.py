"""Schema of the `rig_change` node: the rig-change study (experiment=rig_change, stage=rig_change).

The study trains the trajectory model on rig A (stage 1, then stage 2), fine-tunes it on rig B three ways
(the expert alone; stage 1 then stage 2; stage 1 then stage 2 on rigs A and B mixed) and evaluates the four
models on both rigs (cosmos_exp/study/rig_change.py). Each training run of it is one TrainingPhaseConfig, named
by its run directory under <study>/runs/ (config/names.py RIG_CHANGE_PHASES).
"""

from dataclasses import dataclass, field
from typing import List, Optional


@dataclass
class TrainingPhaseConfig:
    # Optimiser steps (the run's train.max_steps): its final checkpoint, checkpoints/step_<steps>, is what the
    # next run starts from and what is evaluated.
    steps: int = 100
    # The run's train.lr; None keeps the composed train.lr.
    lr: Optional[float] = None
    # More overrides of this run only, e.g. [train.warmup_steps=5] (checked with the rest before any run starts).
    overrides: List[str] = field(default_factory=list)


@dataclass
class RigChangeConfig:
    # The rig the model is trained on first, and the rig it meets after the change (folders <split>/<rig>/).
    rig_a: str = "rig_a"
    rig_b: str = "rig_b"
    # Generate the scenes and the tiny backbone inside the study directory (<study>/data, <study>/models), so a
    # study never reuses what other settings or other code generated; false: paths.data_dir / paths.models_dir.
    own_data: bool = True
    # On rig A: stage 1 from the backbone, stage 2 from stage 1's final checkpoint.
    a_stage1: TrainingPhaseConfig = field(default_factory=TrainingPhaseConfig)
    a_stage2: TrainingPhaseConfig = field(default_factory=TrainingPhaseConfig)
    # The fixes, each from a_stage2's final checkpoint: stage 2 on rig B (the backbone frozen, the expert trains
    # further); stage 1 then stage 2 on rig B; stage 1 then stage 2 on rigs A and B.
    b_expert: TrainingPhaseConfig = field(default_factory=TrainingPhaseConfig)
    b_stage1: TrainingPhaseConfig = field(default_factory=TrainingPhaseConfig)
    b_stage2: TrainingPhaseConfig = field(default_factory=TrainingPhaseConfig)
    mix_stage1: TrainingPhaseConfig = field(default_factory=TrainingPhaseConfig)
    mix_stage2: TrainingPhaseConfig = field(default_factory=TrainingPhaseConfig)
    # Overrides of every evaluation run (stage=evaluate eval=trajectory on both rigs), e.g. [task.trajectory.metrics.k=6].
    eval_overrides: List[str] = field(default_factory=list)
    # Only render rig_change.{json,md} from the study directory's finished evaluations; start no run.
    report_only: bool = False
