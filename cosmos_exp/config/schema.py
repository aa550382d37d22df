"""The root config and its registration in Hydra's ConfigStore.

Every YAML file in cosmos_exp/conf/ is merged onto these dataclasses, so an unknown key or a wrong type fails
at composition with the key's full name.
"""

from dataclasses import dataclass, field
from typing import Optional

from omegaconf import MISSING

from cosmos_exp.config.backend import BackendConfig
from cosmos_exp.config.data import ClipCacheConfig, DatasetConfig
from cosmos_exp.config.evaluation import EvalConfig
from cosmos_exp.config.generation import GenerationConfig
from cosmos_exp.config.model import ModelConfig
from cosmos_exp.config.parallel import ParallelismConfig
from cosmos_exp.config.study import RigChangeConfig
from cosmos_exp.config.sweep import SweepConfig
from cosmos_exp.config.task import TaskConfig
from cosmos_exp.config.train import TrainConfig


@dataclass
class StageConfig:
    name: str = MISSING


@dataclass
class PathsConfig:
    # Relative paths resolve from the directory cosmos-exp is started in (recorded in run.json).
    root: str = "outputs"
    data_dir: str = "${paths.root}/data"
    models_dir: str = "${paths.root}/models"
    runs_dir: str = "${paths.root}/runs"
    cache_dir: str = "${paths.root}/cache"


@dataclass
class Config:
    stage: StageConfig = field(default_factory=StageConfig)
    backend: BackendConfig = field(default_factory=BackendConfig)
    model: ModelConfig = MISSING
    dataset: DatasetConfig = MISSING
    parallelism: ParallelismConfig = MISSING
    eval: EvalConfig = MISSING
    train: TrainConfig = field(default_factory=TrainConfig)
    # What stage=sft trains: captions (the default) or the trajectory model (conf/task/).
    task: TaskConfig = field(default_factory=TaskConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    clip_cache: ClipCacheConfig = field(default_factory=ClipCacheConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    # The rig-change study's settings (stage=rig_change; set by experiment=rig_change).
    rig_change: Optional[RigChangeConfig] = None
    # A short label that ends the run directory's name.
    name: str = "run"
    seed: int = 42
    # Compose, validate, print the plan, write nothing.
    dry_run: bool = False
    # Inputs from earlier runs, by run directory: the caption run a judge scores,
    # the two runs a comparison pairs.
    captions: Optional[str] = None
    a: Optional[str] = None
    b: Optional[str] = None


def register_configs() -> None:
    from hydra.core.config_store import ConfigStore  # here, not above: the cosmos-rl entry types configs without Hydra

    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
