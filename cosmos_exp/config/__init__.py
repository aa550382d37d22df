"""Typed configuration: dataclass schemas (registered in Hydra's ConfigStore) and validation rules."""

from cosmos_exp.config.errors import ConfigError, NotImplementedStage
from cosmos_exp.config.schema import BACKENDS, STAGES, Config, register_configs

__all__ = ["BACKENDS", "STAGES", "Config", "ConfigError", "NotImplementedStage", "register_configs"]
