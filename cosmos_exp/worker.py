"""The one entry of the ranks a stage starts, as run.py is the user's: `python -m cosmos_exp.worker <run_dir> <task>`.

    sft                       the DeepSpeed loop (deepspeed_loop.train); exit 130 when a stop signal ended it
    caption [<captions root>] this rank's share of the split (infer/caption.run_shard) into the captions root,
                              the run directory unless given

The config is the run directory's resolved.yaml, written by cosmos-exp before the stage ran and read through
rundir.load_run_config; rank, world size and the rendezvous come from the environment the launcher set. A
failure exits non-zero with its traceback in this rank's log, which the launcher quotes.
"""

import logging
import sys
from pathlib import Path
from typing import Any, List, Optional

from cosmos_exp import rundir
from cosmos_exp.runtime.launcher import RankResult, launch

MODULE = "cosmos_exp.worker"
EXIT_INTERRUPTED = 130  # the sft stage turns it back into TrainingInterrupted
USAGE = f"usage: python -m {MODULE} <run_dir> sft | <run_dir> caption [<captions root>]"


def worker_argv(run_dir: Path, task: str, *args: str) -> List[str]:
    return [sys.executable, "-m", MODULE, str(run_dir), task, *args]


def start_ranks(run_dir: Path, task: str, nproc: int, *args: str, **launch_options: Any) -> List[RankResult]:
    """Start nproc ranks of `task` on run_dir (launcher.launch's options), each logging to <run_dir>/logs/."""
    if rundir.config_path(run_dir) is None:
        raise FileNotFoundError(f"{run_dir}/{rundir.RESOLVED_YAML} is missing: the {task} ranks read their "
                                "config from it")
    return launch(worker_argv(run_dir, task, *args), nproc, Path(run_dir) / rundir.LOGS_DIR, name=task,
                  **launch_options)


def _sft(run_dir: Path) -> int:
    from cosmos_exp.train.deepspeed_loop import train
    from cosmos_exp.train.signals import TrainingInterrupted

    try:
        train(rundir.load_run_config(run_dir), run_dir)
    except TrainingInterrupted as err:
        print(f"cosmos-exp sft: {err}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def _caption(run_dir: Path, root: Path) -> int:
    from cosmos_exp.infer.caption import run_shard
    from cosmos_exp.infer.checkpoint import inspect_checkpoint
    from cosmos_exp.runtime.topology import topology

    cfg = rundir.load_run_config(run_dir)
    shard = topology().shard()
    result = run_shard(cfg, root, shard, inspect_checkpoint(cfg.model.path))
    print(f"rank {shard.rank}/{shard.world_size} done: {result}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or (args[1], len(args)) not in (("sft", 2), ("caption", 2), ("caption", 3)):
        print(USAGE, file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] %(message)s")
    run_dir = Path(args[0]).resolve()
    if args[1] == "sft":
        return _sft(run_dir)
    return _caption(run_dir, Path(args[2]).resolve() if len(args) == 3 else run_dir)


if __name__ == "__main__":
    sys.exit(main())
