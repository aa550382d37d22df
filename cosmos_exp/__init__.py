"""cosmos_exp: one Hydra application for post-training Cosmos Reason video-language models."""

__version__ = "0.1.0"
