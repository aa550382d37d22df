"""The run-directory contract: every name a run directory holds, its small readers, and the completeness rules.

A run directory is what one `cosmos-exp` invocation writes (see the README's "Runs and run directories"):

    .hydra/{config,hydra,overrides}.yaml   Hydra's own
    resolved.yaml                          the fully resolved config, secrets redacted (written before the stage runs)
    run.json                               provenance, status ("running" | "succeeded" | "failed" | "interrupted"), result
    log.txt, logs/                         the log, and one log per worker process
    data_report.json                       items skipped as bad, by file and reason
    data_fingerprints.json                 the content hash of every clip a run read, per split (digests in run.json)
    checkpoints/step_N/                    a training checkpoint, complete once it holds complete.json
    checkpoints/latest                     "step_N" of the newest complete checkpoint
    metrics.jsonl, train_result.json       training metrics and outcome
    captions/<id>.json, captions/index.json  one caption per item, and the run's index of them
    predictions/<rig>/<scene>.json         a trajectory evaluation's sampled and decoded trajectories per clip
    scores/<id>.score.json, summary.json   one score record per item, and the metrics with their CIs
    evaluate.json                          which checkpoint, step and training run an evaluation scored
    comparison.{json,md}, report.{json,md,csv}, plots/, sweep.json
    objective.json                         a search trial's objective (sweep.objective): value or failure, and its config
    train_eval.json, runs/{sft,evaluate}/  stage=train_eval: the checkpoint it picked and its two runs
    runs/<phase>/, logs/<phase>.log        a study's own runs (stage=rig_change), and each one's console output
    rig_change.{json,md}                   the rig-change study's table, from its evaluation runs

Stages find earlier runs by path and read them only through this module, so a file's name lives in one place.
Nothing heavy is imported here: the cosmos-rl entry script reads run directories from cosmos-rl's own Python.
"""

import json
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

PathLike = Union[str, Path]

RESOLVED_YAML = "resolved.yaml"
HYDRA_CONFIG = ".hydra/config.yaml"
HYDRA_DIR = ".hydra"
RUN_JSON = "run.json"
LOG_TXT = "log.txt"
LOGS_DIR = "logs"
DATA_REPORT = "data_report.json"
DATA_FINGERPRINTS = "data_fingerprints.json"

CHECKPOINTS_DIR = "checkpoints"
LATEST = "latest"
COMPLETE = "complete.json"
TEMP_STEP_PREFIX = ".tmp_step_"
METRICS_JSONL = "metrics.jsonl"
WANDB_RUN_ID = "wandb_run_id.txt"  # a resumed run continues the same wandb run
TENSORBOARD_DIR = "tensorboard"
COSMOS_RL_DIR = "cosmos_rl"  # cosmos-rl's output root, its rendered TOML beside it
COSMOS_RL_TOML = "cosmos_rl.toml"
TRAIN_RESULT = "train_result.json"

CAPTIONS_DIR = "captions"
CAPTIONS_INDEX = "index.json"
SHARDS_DIR = ".shards"  # inside captions/: one report per rank, merged into index.json

PREDICTIONS_DIR = "predictions"  # trajectory evaluations: predictions/<rig>/<scene>.json
SCORES_DIR = "scores"
SCORE_SUFFIX = ".score.json"
SUMMARY_JSON = "summary.json"
EVALUATE_JSON = "evaluate.json"
COMPARISON_JSON = "comparison.json"
COMPARISON_MD = "comparison.md"
REPORT_JSON = "report.json"
REPORT_MD = "report.md"
REPORT_CSV = "report.csv"
PLOTS_DIR = "plots"
SWEEP_JSON = "sweep.json"  # in a multirun's sweep directory: the jobs planned before any was queued
OBJECTIVE_JSON = "objective.json"  # in a search trial's run directory (sweep/objective.py)
OPTUNA_RESULTS = "optimization_results.yaml"  # the Optuna sweeper's best parameters, in the sweep directory
TRAIN_EVAL_JSON = "train_eval.json"  # stage=train_eval: its training and evaluation runs, the checkpoint picked
STUDY_RUNS_DIR = "runs"  # a study's runs: <study>/runs/<phase>/, each a whole run directory
RIG_CHANGE_JSON = "rig_change.json"
RIG_CHANGE_MD = "rig_change.md"

_STEP_RE = re.compile(r"^step_(\d+)$")


# --- small readers ---------------------------------------------------------------------------------------

def read_json(path: PathLike) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_json_optional(path: PathLike) -> Optional[Dict[str, Any]]:
    """A JSON object, or None when the file is missing, unreadable or not an object."""
    try:
        data = read_json(path)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_metrics(run_dir: PathLike) -> List[Dict[str, Any]]:
    """The records of a training run's metrics.jsonl, in order ([] when there is none)."""
    path = Path(run_dir) / METRICS_JSONL
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_run_json(run_dir: PathLike) -> Dict[str, Any]:
    """run.json of a run directory ({} when missing or unreadable)."""
    return read_json_optional(Path(run_dir) / RUN_JSON) or {}


def is_run_dir(path: PathLike) -> bool:
    return (Path(path) / RUN_JSON).is_file()


def config_path(run_dir: PathLike) -> Optional[Path]:
    """The run's config: resolved.yaml, else Hydra's .hydra/config.yaml (a run stopped before cosmos-exp wrote it)."""
    for name in (RESOLVED_YAML, HYDRA_CONFIG):
        path = Path(run_dir) / name
        if path.is_file():
            return path
    return None


def load_run_config(run_dir: PathLike, typed: bool = True) -> Any:
    """The config a run was started with, as cosmos-exp validated it: every worker and entry script reads it here.

    typed=True merges it onto the schema (config.schema.Config), so a file edited by hand cannot carry an
    unknown key or a wrong type; typed=False returns the plain OmegaConf node."""
    from omegaconf import OmegaConf

    path = config_path(run_dir)
    if path is None:
        raise FileNotFoundError(f"{Path(run_dir) / RESOLVED_YAML} is missing (and {HYDRA_CONFIG} too): not a "
                                "cosmos-exp run directory (start the run through cosmos-exp)")
    node = OmegaConf.load(path)
    if not typed:
        return node
    from cosmos_exp.config.validate import typed as to_typed

    return to_typed(node)


# --- checkpoints ---------------------------------------------------------------------------------------

def checkpoints_dir(run_dir: PathLike) -> Path:
    return Path(run_dir) / CHECKPOINTS_DIR


def step_dir(run_dir: PathLike, step: int) -> Path:
    return checkpoints_dir(run_dir) / f"step_{step}"


def temp_step_dir(run_dir: PathLike, step: int) -> Path:
    return checkpoints_dir(run_dir) / f"{TEMP_STEP_PREFIX}{step}"


def step_of(path: PathLike) -> int:
    m = _STEP_RE.match(Path(path).name)
    if not m:
        raise ValueError(f"{path} is not a checkpoints/step_N directory")
    return int(m.group(1))


def is_step_dir(path: PathLike) -> bool:
    return bool(_STEP_RE.match(Path(path).name))


def is_complete(step_path: PathLike) -> bool:
    """The one rule for a checkpoint: complete once it holds complete.json (written last, before the rename)."""
    return (Path(step_path) / COMPLETE).is_file()


def list_complete(run_dir: PathLike) -> List[Path]:
    """Complete step directories, oldest first."""
    root = checkpoints_dir(run_dir)
    if not root.is_dir():
        return []
    steps = [p for p in root.iterdir() if p.is_dir() and is_step_dir(p) and is_complete(p)]
    return sorted(steps, key=step_of)


def newest_complete(run_dir: PathLike) -> Optional[Path]:
    done = list_complete(run_dir)
    return done[-1] if done else None


def read_checkpoint_info(step_path: PathLike) -> Dict[str, Any]:
    return read_json(Path(step_path) / COMPLETE)


def train_run_of(step_path: PathLike) -> Optional[Path]:
    """The training run a checkpoints/step_N belongs to (None for any other directory)."""
    p = Path(step_path)
    return p.parent.parent if is_step_dir(p) and p.parent.name == CHECKPOINTS_DIR else None


# --- captions and scores ----------------------------------------------------------------------------------

def captions_dir(run_dir: PathLike) -> Path:
    return Path(run_dir) / CAPTIONS_DIR


def caption_path(captions: PathLike, item_id: str) -> Path:
    """captions/<id>.json, given the captions/ directory."""
    return Path(captions) / f"{item_id}.json"


def captions_index(run_dir: PathLike) -> Path:
    return captions_dir(run_dir) / CAPTIONS_INDEX


def caption_files(run_dir: PathLike) -> List[Path]:
    """The per-item caption files; hidden files (temp files, .shards/) and the index are not items."""
    d = captions_dir(run_dir)
    if not d.is_dir():
        return []
    return sorted((p for p in d.glob("*.json") if not p.name.startswith(".") and p.name != CAPTIONS_INDEX),
                  key=lambda p: p.name)  # one folder: the names order them (comparing Paths is slow by the thousand)


def scores_dir(run_dir: PathLike) -> Path:
    return Path(run_dir) / SCORES_DIR


def score_path(run_dir: PathLike, item_id: str) -> Path:
    return scores_dir(run_dir) / f"{item_id}{SCORE_SUFFIX}"


def score_files(run_dir: PathLike) -> Dict[str, Path]:
    """scores/<id>.score.json by item id."""
    d = scores_dir(run_dir)
    if not d.is_dir():
        return {}
    return {p.name[: -len(SCORE_SUFFIX)]: p for p in sorted(d.glob(f"*{SCORE_SUFFIX}"))}


def prediction_path(run_dir: PathLike, rig: str, scene_id: str) -> Path:
    """predictions/<rig>/<scene>.json: one clip's trajectories (a trajectory evaluation)."""
    return Path(run_dir) / PREDICTIONS_DIR / rig / f"{scene_id}.json"


def trajectory_item_id(rig: str, scene_id: str) -> str:
    """The item id of a clip's score file: rig and scene, so two runs pair clip by clip."""
    return f"{rig}__{scene_id}"


def study_run(study_dir: PathLike, phase: str) -> Path:
    """The run directory of one phase of a study (stage=rig_change)."""
    return Path(study_dir) / STUDY_RUNS_DIR / phase


def evaluation_done(run_dir: PathLike, fingerprint: str) -> bool:
    """The one rule for a finished evaluation (a resumed sweep skips it): evaluate.json, written last, carries
    the fingerprint of the same settings, and summary.json exists."""
    record = read_json_optional(Path(run_dir) / EVALUATE_JSON) or {}
    return record.get("fingerprint") == fingerprint and (Path(run_dir) / SUMMARY_JSON).is_file()


def is_scored_run(run_dir: PathLike) -> bool:
    """A judge or evaluate run: it has summary.json and scores/."""
    return (Path(run_dir) / SUMMARY_JSON).is_file() and scores_dir(run_dir).is_dir()
