"""Entry of one training rank started by sft_stage.run: `python -m cosmos_exp.train.worker <run_dir>`.

Reads the run's resolved.yaml (written by cosmos-exp before the stage runs), checks it against the
schema, and runs the loop. Rank, world size and the rendezvous address come from the environment.
"""

import logging
import sys
from pathlib import Path

from cosmos_exp.rundir import load_run_config
from cosmos_exp.train.signals import TrainingInterrupted

EXIT_INTERRUPTED = 130


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m cosmos_exp.train.worker <run_dir>", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] %(message)s")
    run_dir = Path(argv[0]).resolve()
    cfg = load_run_config(run_dir)
    from cosmos_exp.train.deepspeed_loop import train

    try:
        train(cfg, run_dir)
    except TrainingInterrupted as err:
        print(f"cosmos-exp sft: {err}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
