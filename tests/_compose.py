"""A typed config composed from the shipped presets, as the CLI composes it (no Hydra app, no run directory)."""

from typing import List

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from cosmos_exp.config import Config, register_configs
from cosmos_exp.config.validate import typed

from conftest import CONF_DIR

register_configs()


def compose_typed(overrides: List[str]) -> Config:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return typed(compose(config_name="config", overrides=list(overrides)))
