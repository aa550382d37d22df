"""Hydra finds launchers only under hydra_plugins: hydra/launcher=local_parallel names this class
(conf/hydra/launcher/local_parallel.yaml); the launcher is cosmos_exp/sweep/local_parallel.py."""

from cosmos_exp.sweep.local_parallel import ParallelLauncher


class LocalParallelLauncher(ParallelLauncher):
    pass
