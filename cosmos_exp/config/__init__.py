"""Typed configuration: dataclass schemas (registered in Hydra's ConfigStore) and validation rules."""

from pathlib import Path

from cosmos_exp.config.errors import ConfigError, DataError
from cosmos_exp.config.names import BACKENDS, STAGES
from cosmos_exp.config.schema import Config, register_configs

# The config tree (conf/config.yaml and one folder per group) ships inside the package (package data), so an
# installed wheel finds it as a checkout does.
CONF_DIR = Path(__file__).resolve().parent.parent / "conf"

__all__ = ["BACKENDS", "CONF_DIR", "STAGES", "Config", "ConfigError", "DataError", "register_configs"]
