"""Typed configuration: dataclass schemas (registered in Hydra's ConfigStore) and validation rules."""

from cosmos_exp.config.errors import ConfigError, DataError
from cosmos_exp.config.names import BACKENDS, STAGES
from cosmos_exp.config.schema import Config, register_configs

__all__ = ["BACKENDS", "STAGES", "Config", "ConfigError", "DataError", "register_configs"]
