"""cosmos-exp's Hydra launcher plugin (hydra/launcher=local_parallel)."""
