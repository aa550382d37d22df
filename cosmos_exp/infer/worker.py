"""One caption worker started by the caption stage: `python -m cosmos_exp.infer.worker <config.yaml> <root>`.

RANK / WORLD_SIZE come from the environment the launcher set; the exit status is non-zero on any error,
with the traceback in this worker's log, which the launcher quotes.
"""

import logging
import sys
from pathlib import Path

from omegaconf import OmegaConf


def main(argv=None) -> int:
    from cosmos_exp.config.validate import typed
    from cosmos_exp.infer.caption_stage import run_shard
    from cosmos_exp.infer.checkpoint import inspect_checkpoint
    from cosmos_exp.infer.sharding import shard_from_env

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m cosmos_exp.infer.worker <config.yaml> <captions root>", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    cfg = typed(OmegaConf.load(args[0]))
    shard = shard_from_env()
    result = run_shard(cfg, Path(args[1]), shard, inspect_checkpoint(cfg.model.path))
    print(f"rank {shard.rank}/{shard.world_size} done: {result}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
