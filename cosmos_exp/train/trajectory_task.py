"""task=trajectory_*: the Alpamayo-style trajectory model on our DeepSpeed loop (the interface is train/task.py's).

The model is cosmos_exp/models/trajectory_model.py's, from model.path: a backbone prepared with the trajectory
tokens (a fresh expert is built from `seed`), or a trajectory checkpoint (backbone + action_expert/, e.g. a
checkpoints/step_N of an earlier trajectory run), whose expert then trains further. What trains depends on the
stage (train/trajectory_objective.py); every checkpoint is a whole trajectory checkpoint (backbone HF files +
action_expert/, models/trajectory_checkpoint.py) inside the run's step_N, so stage=evaluate, sweeps and the next
stage load it with load_trajectory_checkpoint.

For stage 2 and co-training the backbone in memory is compared, tensor by tensor, with the checkpoint model.path
names right after loading: upstream once trained its expert against the base weights because loading silently
replaced the stage-1 ones.

Data seam: a TrajectorySource gives the items of a split and turns one item into the model's features;
trajectory_source(cfg) reads the configured driving dataset (data/driving_datasets.py), and tests may pass their
own source to TrajectoryTask.
"""

from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from cosmos_exp.config.errors import ConfigError
from cosmos_exp.config.schema import Config
from cosmos_exp.config.train import training_seed
from cosmos_exp.models.trajectory_checkpoint import EXPERT_DIR
from cosmos_exp.train.task import TaskData
from cosmos_exp.trajectory.token_names import (FUTURE_START, HISTORY_END, HISTORY_START, PREPARE_HINT,
                                               checkpoint_tokens, future_tokens, history_token)


@dataclass
class TrajectorySource:
    """Where a trajectory run's samples come from: items(split) -> the split's items in a fixed order;
    encode(processor, item) -> the features of cosmos_exp/data/trajectory_sample.encode_trajectory_sample
    (prefix tensors, camera_index, v0 and the normalised ground-truth `actions`)."""

    items: Callable[[str], Sequence[Any]]
    encode: Callable[[Any, Any], Dict[str, Any]]
    # split -> what reading it skipped (a DataReport), filled by items() where the source reads files
    reports: Dict[str, Any] = field(default_factory=dict)


def trajectory_source(cfg: Config) -> TrajectorySource:
    """The configured driving dataset's clips (data/driving_datasets.py: dataset.kind driving | physical_ai_av,
    the rigs dataset.rigs picks), each turned into the model's features with task.trajectory's prompt and action
    space. A split is read once; bad clips are skipped and reported as the caption datasets do."""
    from cosmos_exp.data.driving_clip import clip_features
    from cosmos_exp.data.driving_datasets import driving_clips

    t = cfg.task.trajectory
    read: Dict[str, List[Any]] = {}
    reports: Dict[str, Any] = {}

    def items(split: str) -> Sequence[Any]:
        if split not in read:
            read[split], reports[split] = driving_clips(cfg.dataset, split, t.action_space)
        return read[split]

    return TrajectorySource(items=items, reports=reports,
                            encode=lambda processor, clip: clip_features(processor, clip, t.prompt, t.action_space))



# -- what model.path must hold (cheap: the stage's plan runs this, without torch) -----------------------------

def _plain(node: Any) -> Dict[str, Any]:
    if is_dataclass(node):
        return asdict(node)
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=True)


def check_checkpoint(cfg: Config) -> None:
    """model.path holds the tokens the stage uses, and an expert there (a trajectory checkpoint) was built with
    this task's settings; each failure is a ConfigError naming the key."""
    tr = cfg.task.trajectory
    path = Path(cfg.model.path)
    needed = [HISTORY_START, HISTORY_END, FUTURE_START, history_token(tr.prompt.history_bins - 1)]
    if tr.stage in ("stage1", "cotrain"):
        needed += future_tokens(tr.action_space)
    have = checkpoint_tokens(path)
    missing = [t for t in needed if t not in have]
    if missing:
        raise ConfigError("model.path", f"{path} lacks the trajectory tokens of task {cfg.task.name} "
                          f"({missing[0]}{f' and {len(missing) - 1} more' if len(missing) > 1 else ''})",
                          f"{PREPARE_HINT} (with this task's prompt and action_space)")
    meta_path = path / EXPERT_DIR / "config.json"
    if not meta_path.is_file():
        return
    from cosmos_exp.rundir import read_json_optional

    meta = read_json_optional(meta_path) or {}
    for section in ("expert", "action_space", "prompt"):
        mine, saved = _plain(getattr(tr, section)), meta.get(section) or {}
        differ = sorted(k for k in mine if mine[k] != saved.get(k))
        if differ:
            k = differ[0]
            raise ConfigError(f"task.trajectory.{section}.{k}", f"{mine[k]!r} differs from the expert saved in "
                              f"{path} ({saved.get(k)!r})", "the expert's settings must match the checkpoint it "
                              "continues; set them to the checkpoint's or start from a backbone without an expert")


# -- the task -------------------------------------------------------------------------------------------------

class TrajectoryTask:
    def __init__(self, cfg: Config, source: Optional[TrajectorySource] = None) -> None:
        self.cfg = cfg
        self.tcfg = self._settings(cfg)
        self.source = source if source is not None else trajectory_source(cfg)
        self.processor: Any = None

    @staticmethod
    def _settings(cfg: Config) -> Any:
        """The trajectory settings as dataclasses (the model records them with asdict)."""
        from omegaconf import DictConfig, OmegaConf

        tr = cfg.task.trajectory
        return OmegaConf.to_object(tr) if isinstance(tr, DictConfig) else tr

    def load_data(self, rank: int, world: int) -> TaskData:
        from cosmos_exp.data.report import DataReport
        from cosmos_exp.data.processor import Processor
        from cosmos_exp.train.trajectory_batches import first_batches

        cfg = self.cfg
        self.processor = Processor.from_pretrained(cfg.model.path, model_max_length=cfg.model.model_max_length)
        items = list(self.source.items(cfg.dataset.train_split))
        if not items:
            raise ValueError(f"dataset {cfg.dataset.name!r} split {cfg.dataset.train_split!r} has no trajectory items")
        report = self.source.reports.get(cfg.dataset.train_split) or \
            DataReport(cfg.dataset.name, cfg.dataset.train_split, found=len(items), used=len(items))
        held_out: List[Dict[str, Any]] = []
        if cfg.train.eval_every:
            eval_items = list(self.source.items(cfg.dataset.eval_split))
            if eval_items:
                held_out = first_batches(self._loader(eval_items, rank, world, 0, num_workers=0),
                                         cfg.train.eval_batches)
        return TaskData(self.processor, items, report, held_out)

    def _loader(self, items: Sequence[Any], rank: int, world: int, start: int, num_workers: int) -> Any:
        from cosmos_exp.train.trajectory_batches import trajectory_loader

        return trajectory_loader(items, self.source.encode, self.processor, self.tcfg, self.cfg.train.micro_batch_size,
                                 training_seed(self.cfg.train, self.cfg.seed), rank, world, num_workers, start)

    def train_stream(self, data: TaskData, rank: int, world: int, start_micro_step: int) -> Any:
        return self._loader(data.train, rank, world, start_micro_step, self.cfg.dataset.num_workers)

    def build_model(self, on_gpu: bool) -> Tuple[Any, List[str]]:
        from cosmos_exp.train.optim import apply_freeze
        from cosmos_exp.train.trajectory_objective import TrajectoryObjective

        cfg, stage = self.cfg, self.tcfg.stage
        model = self.load_model()
        objective = TrajectoryObjective(model, self.tcfg, eval_seed=cfg.seed)
        backbone_side = [model.backbone] + ([model.camera_embedding] if model.camera_embedding is not None else [])
        for module in backbone_side:
            module.requires_grad_(stage != "stage2")
        model.expert.requires_grad_(stage != "stage1")
        if stage != "stage2":
            apply_freeze(model.backbone, list(cfg.train.freeze))
        if stage == "stage1" and cfg.train.gradient_checkpointing:
            model.backbone.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            model.backbone.config.use_cache = False
        frozen = [name for name, p in objective.named_parameters() if not p.requires_grad]
        return objective, frozen

    def load_model(self) -> Any:
        """The TrajectoryModel of model.path in float32 (DeepSpeed casts on GPU), checked against model.path."""
        from cosmos_exp.models.trajectory_checkpoint import BackboneMismatchError, check_backbone, load_trajectory_checkpoint
        from cosmos_exp.models.trajectory_model import TrajectoryModel

        cfg, tr = self.cfg, self.tcfg
        check_checkpoint(cfg)
        path = Path(cfg.model.path)
        try:
            if (path / EXPERT_DIR).is_dir():  # continue its expert; the loader checks the backbone against path
                model = load_trajectory_checkpoint(path, dtype="float32", expected_backbone=path)
                model.flow_cfg = tr.flow_matching
            else:
                model = TrajectoryModel.from_backbone(path, tr.expert, tr.prompt, tr.action_space, tr.flow_matching,
                                                      dtype="float32", seed=training_seed(cfg.train, cfg.seed))
                if tr.stage != "stage1":  # the expert is trained against this backbone: it must be model.path's
                    check_backbone(model, path)
        except BackboneMismatchError as err:
            raise ConfigError("model.path", str(err)) from None
        return model

    def loss_units(self, batch: Dict[str, Any]) -> int:
        """Stage 1: the labelled future tokens; otherwise the action tokens (samples x waypoints)."""
        if self.tcfg.stage == "stage1":
            from cosmos_exp.train.data import answer_tokens

            return answer_tokens(batch)
        return int(batch["input_ids"].shape[0]) * int(self.tcfg.action_space.n_steps)

    def write_model(self, module: Any, out_dir: Path, full_state: Optional[Dict[str, Any]]) -> None:
        from cosmos_exp.models.trajectory_checkpoint import write_trajectory_files

        if full_state is not None:
            raise ValueError("trajectory checkpoints are written from the module's own weights (ZeRO 0-2)")
        write_trajectory_files(module.model, out_dir, self.processor)
