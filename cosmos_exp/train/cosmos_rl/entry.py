"""The script cosmos-rl runs in every role (controller and each policy rank):

    cosmos-rl --config <run_dir>/cosmos_rl.toml ... entry.py --cosmos-exp-run-dir <run_dir>

It reads our resolved config from the run directory and hands cosmos-rl a dataset factory whose items are
the conversations of `build_dataset` (made by `build_conversation`, the same ones the DeepSpeed loop
trains on) as a torch.utils.data.Dataset (dataset.py), the held-out split when train.eval_every is set, and a
logger writing <run_dir>/metrics.jsonl. cosmos-rl lives in its own environment (transformers<5), so the roles
import only light parts of cosmos_exp (config, data listing, prompts; torch.utils.data, which that environment
has, but no transformers) and cosmos_rl only inside main(). This module itself imports no torch: the stage's
plan reads its names.
"""

import argparse
import functools
import sys
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence

_HERE = Path(__file__).resolve().parent
RUN_DIR_FLAG = "--cosmos-exp-run-dir"
REPORT_PREFIX = "data_report_"
CACHE_PREFIX = "conversations_"


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument(RUN_DIR_FLAG, dest="cosmos_exp_run_dir", required=True,
                        help="the cosmos-exp run directory (holds resolved.yaml)")
    parser.add_argument("--cosmos-exp-split", dest="cosmos_exp_split", default=None,
                        help="dataset split to train on (default: dataset.train_split of the run)")
    return parser


def parse_args(argv: Optional[Sequence[str]] = None, parser: Optional[argparse.ArgumentParser] = None):
    """Our flags on top of cosmos-rl's parser; unknown ones are left for cosmos-rl (parse_known_args)."""
    parser = add_arguments(parser or argparse.ArgumentParser(description="cosmos-exp dataloader entry"))
    args, _unknown = parser.parse_known_args(argv)
    return args


def load_run_config(run_dir: Path) -> Any:
    """The run's resolved config (what cosmos-exp validated and recorded), as a plain OmegaConf node: typing it
    would import Hydra's ConfigStore, one package more in cosmos-rl's environment."""
    from cosmos_exp import rundir

    return rundir.load_run_config(run_dir, typed=False)


def cache_path(run_dir: Path, split: str) -> Path:
    from cosmos_exp import rundir

    return Path(run_dir) / rundir.COSMOS_RL_DIR / f"{CACHE_PREFIX}{split}.json"


def report_path(run_dir: Path, split: str) -> Path:
    from cosmos_exp import rundir

    return Path(run_dir) / rundir.COSMOS_RL_DIR / f"{REPORT_PREFIX}{split}.json"


def load_conversations(run_dir: Path, split: Optional[str] = None) -> List[list]:
    """The split's conversations, built once per launch and shared by every role and rank.

    cosmos-rl builds the dataset in the controller and in each policy rank; building means listing,
    parsing labels and opening every clip, so the first process builds under a file lock and writes the
    result (and the data report) into the run directory, the others read it. Before each launch the stage
    removes the caches and writes the training split's itself, without the items too long to train
    (overlong.py), so a relaunch sees the data as it is then."""
    import fcntl
    import json

    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    split = split or cfg.dataset.train_split
    cache = cache_path(run_dir, split)
    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(cache.parent / f".{cache.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if cache.is_file():
            items = json.loads(cache.read_text(encoding="utf-8"))["conversations"]
            print(f"cosmos-exp entry: {len(items)} conversations of {cfg.dataset.name}/{split} from {cache}",
                  file=sys.stderr)
            return items
        from cosmos_exp.data.datasets import build_dataset

        samples, report = build_dataset(cfg.dataset, split)
        print(f"cosmos-exp entry: built {report.summary()}", file=sys.stderr)
        return write_conversations(run_dir, split, samples, report)


def write_conversations(run_dir: Path, split: str, samples: list, report: Any) -> List[list]:
    """The split's data report and conversation cache, which every role reads (the stage writes them before
    the launch, having left out what cannot train; run by hand, the first role does)."""
    from cosmos_exp.repro.atomic import write_json_atomic

    write_json_atomic(report_path(run_dir, split), report.to_dict())
    if not samples:
        raise ValueError(f"no usable samples in {report.dataset}/{split}; see {report_path(run_dir, split)}")
    items = [s.conversation for s in samples]
    write_json_atomic(cache_path(run_dir, split), {"dataset": str(report.dataset), "split": split,
                                                   "conversations": items})
    return items


def dataset_factory(run_dir: Path, split: Optional[str] = None, limit: Optional[int] = None) -> Callable[[Any], Any]:
    """What cosmos-rl wants: f(config) -> a torch.utils.data.Dataset (it then calls dataset.setup(config))."""

    def make(config: Any) -> Any:  # noqa: ARG001 - settings come from our run directory
        from cosmos_exp.train.cosmos_rl.dataset import ConversationDataset  # torch: in the roles only

        return ConversationDataset(functools.partial(load_conversations, Path(run_dir), split), limit)

    return make


def validation_factory(run_dir: Path) -> Optional[Callable[[Any], Any]]:
    """The held-out split when train.eval_every is set, as many items as the DeepSpeed loop evaluates
    (eval_batches micro-batches on every data-parallel rank); None otherwise."""
    cfg = load_run_config(run_dir)
    t = cfg.train
    if not t.eval_every:
        return None
    from cosmos_exp.config.batch import data_parallel_ranks

    return dataset_factory(run_dir, str(cfg.dataset.eval_split),
                           int(t.eval_batches) * int(t.micro_batch_size) * data_parallel_ranks(cfg))


def _fix_sys_path() -> None:
    """Run as a file, this folder is sys.path[0]: drop it so our module names (schema, render, ...) cannot
    shadow top-level modules of the cosmos-rl environment. The launch puts a folder holding only cosmos_exp
    on PYTHONPATH; run by hand from a source checkout, the checkout is added. Never the folder above an
    installed package: that is cosmos-exp's site-packages, whose transformers 5 would shadow cosmos-rl's."""
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
    project = _HERE.parents[2]
    if (project / "pyproject.toml").is_file() and str(project) not in sys.path:
        sys.path.append(str(project))


def main(argv: Optional[Sequence[str]] = None) -> None:
    from cosmos_rl.dispatcher.data.packer.base import worker_entry_parser
    from cosmos_rl.launcher.worker_entry import main as worker_main

    from cosmos_exp.train.cosmos_rl.metrics_hook import MetricsFile

    args = parse_args(argv, worker_entry_parser())
    run_dir = Path(args.cosmos_exp_run_dir)
    worker_main(dataset=dataset_factory(run_dir, args.cosmos_exp_split), val_dataset=validation_factory(run_dir),
                custom_logger_fns=[MetricsFile(run_dir)], args=args)


if __name__ == "__main__":
    _fix_sys_path()
    main()
