"""Our typed config -> the cosmos-rl 0.4.7 TOML document of one SFT run.

Paths are fixed in advance: cosmos-rl writes under `train.output_dir`, which we set to
`<run_dir>/cosmos_rl/<TIMESTAMP>` together with `train.timestamp = TIMESTAMP`, so its own
`Config.from_dict` does not append a wall-clock timestamp (see shared/reference/cosmos-rl.md).
"""

import copy
from pathlib import Path
from typing import Any, Dict

from omegaconf import OmegaConf

from cosmos_exp.config.schema import Config
from cosmos_exp.config.train import training_seed
from cosmos_exp import rundir
from cosmos_exp.config import ConfigError
from cosmos_exp.config.batch import batch_layout
from cosmos_exp.train.cosmos_rl.freeze import freeze_patterns

OUTPUT_ROOT = rundir.COSMOS_RL_DIR  # <run_dir>/cosmos_rl: cosmos-rl's output root (dirname of train.output_dir)
TIMESTAMP = "sft"
TOML_NAME = rundir.COSMOS_RL_TOML
LOG_DIR = "cosmos_rl_logs"
_DTYPE_ALIASES = {"bf16": "bfloat16", "bfloat16": "bfloat16", "fp16": "float16", "float16": "float16",
                  "fp32": "float32", "float32": "float32"}
_DECAY = {"cosine": "cosine", "linear": "linear", "constant": "none"}


def output_dir(run_dir: Path) -> Path:
    """cosmos-rl's OUT: checkpoints/step_N/policy/ (training state) and safetensors/step_N/ (HF exports).
    `run_dir` is absolute (or the dry run's placeholder)."""
    return Path(run_dir) / OUTPUT_ROOT / TIMESTAMP


def world(cfg: Config) -> int:
    return int(cfg.parallelism.nnodes * cfg.parallelism.nproc_per_node)


def _parallelism(cfg: Config) -> Dict[str, int]:
    # Every size explicit: cosmos-rl's tp_size defaults to 2, and its GPU count reads dp_shard_size=-1 as 1.
    p = cfg.parallelism
    tp = int(p.tp_size)
    shard = world(cfg) // tp if p.dp_shard_size == -1 else int(p.dp_shard_size)
    return {"n_init_replicas": 1, "tp_size": tp, "dp_shard_size": shard, "cp_size": 1, "pp_size": 1,
            "dp_replicate_size": 1, "ep_size": 1}


def _resume(cfg: Config) -> Any:
    value = str(cfg.train.resume)
    if value == "auto":
        return True  # cosmos-rl resumes from the newest complete step under <run_dir>/cosmos_rl, if any
    if value == "none":
        return False
    path = Path(value).resolve()
    if (path / "policy").is_dir():
        return str(path / "policy")
    if path.name == "policy" and path.is_dir():
        return str(path)
    raise ConfigError("train.resume", f"{path} is not a cosmos-rl training-state checkpoint",
                      f"resume from <run_dir>/{OUTPUT_ROOT}/{TIMESTAMP}/checkpoints/step_N (it holds policy/), "
                      "or use auto / none")


def _validation(cfg: Config) -> Dict[str, Any]:
    """Held-out loss every train.eval_every steps (the entry passes the eval split as cosmos-rl's val_dataset)."""
    t = cfg.train
    if not t.eval_every:
        return {"enable": False}
    return {"enable": True, "freq": int(t.eval_every), "batch_size": int(t.micro_batch_size), "val_before_train": False}


def _custom(cfg: Config, run_dir: Path) -> Dict[str, Any]:
    """Our settings, for the entry script and for a reader of the TOML (cosmos-rl ignores [custom])."""
    d = cfg.dataset
    vision = {k: v for k, v in OmegaConf.to_container(d.vision, resolve=True).items() if v is not None}
    return {"cosmos_exp": {
        "run_dir": str(run_dir),
        "resolved_config": str(Path(run_dir) / rundir.RESOLVED_YAML),
        "model_family": str(cfg.model.family),
        "dataset": {"name": str(d.name), "kind": str(d.kind), "root": str(d.root), "split": str(d.train_split)},
        "vision": vision,
    }}


def render(cfg: Config, run_dir: Path) -> Dict[str, Any]:
    """The TOML document (a dict) for an SFT run writing into `run_dir`; backend.toml_overrides merged last."""
    t, m = cfg.train, cfg.model
    batch = batch_layout(cfg)
    train: Dict[str, Any] = {
        "output_dir": str(output_dir(run_dir)),
        "timestamp": TIMESTAMP,
        "resume": _resume(cfg),
        "epoch": int(t.epochs),
        # Per data-parallel rank in cosmos-rl; ours is global (config/batch.py).
        "train_batch_per_replica": batch.per_rank,
        "seed": training_seed(cfg.train, cfg.seed),
        "optm_name": "AdamW",
        "optm_lr": float(t.lr),
        "optm_weight_decay": float(t.weight_decay),
        "optm_betas": [float(b) for b in t.betas],
        # cosmos-rl reads an int as steps and a float in [0, 1] as a fraction of all steps.
        "optm_warmup_steps": int(t.warmup_steps) if t.warmup_steps is not None else float(t.warmup_ratio),
        "optm_decay_type": _DECAY[t.lr_schedule],
        "optm_min_lr_factor": float(t.min_lr_ratio),
        "optm_grad_norm_clip": float(t.grad_clip),
        "compile": bool(cfg.backend.compile),
        "fsdp_offload": bool(cfg.parallelism.offload_optimizer or cfg.parallelism.offload_param),
        "save_ckpt_at_exit": True,
        "signal_to_handle": ["SIGUSR1"],
    }
    if t.max_steps is not None:
        train["max_num_steps"] = int(t.max_steps)
    dtype = _DTYPE_ALIASES.get(str(m.dtype))
    if dtype:
        train["param_dtype"] = dtype
    train["train_policy"] = {
        "type": "sft",
        "mini_batch": batch.micro_batch,
        # A per-source layout is read in order (the stage wrote it so: train/data.py training_order).
        "dataloader_shuffle": cfg.dataset.blend_batches != "per_source",
        "dataloader_seed": training_seed(cfg.train, cfg.seed),
        "dataloader_num_workers": int(cfg.dataset.num_workers),
        # Ignored by cosmos-rl when our entry passes a dataset; kept for a reader of the file.
        "dataset": {"name": str(cfg.dataset.name), "split": str(cfg.dataset.train_split)},
    }
    train["ckpt"] = {
        "enable_checkpoint": True,
        "save_freq": int(t.save_every),
        # cosmos-rl deletes nothing: its max_keep would delete each export with its training state. The stage
        # prunes them separately (train.keep_last_states / keep_last_exports, retention.py).
        "max_keep": -1,
        "export_safetensors": True,
    }
    policy: Dict[str, Any] = {
        "model_name_or_path": str(Path(str(m.path)).resolve()) if m.path else "",
        "model_max_length": int(m.model_max_length),
        "model_gradient_checkpointing": bool(t.gradient_checkpointing),
        "parallelism": _parallelism(cfg),
    }
    if t.freeze:  # in cosmos-rl's parameter names, checked on the checkpoint's (freeze.py)
        policy["freeze_pattern"] = freeze_patterns(str(m.family), list(t.freeze), Path(str(m.path)))
    doc: Dict[str, Any] = {
        "redis": str(cfg.backend.redis_port),
        "train": train,
        "policy": policy,
        "logging": {"logger": list(cfg.train.loggers), "project_name": str(t.wandb_project),
                    "experiment_name": str(cfg.name), "log_interval": int(t.log_every)},
        "validation": _validation(cfg),
        "custom": _custom(cfg, run_dir),
    }
    overrides = OmegaConf.to_container(cfg.backend.toml_overrides, resolve=True) if cfg.backend.toml_overrides else {}
    keep = _lookup(overrides, "train.ckpt.max_keep")
    if keep not in (None, -1):
        raise ConfigError("backend.toml_overrides", f"train.ckpt.max_keep={keep} would make cosmos-rl delete each "
                          "Hugging Face export together with its training state, losing checkpoints a sweep "
                          "evaluates", "leave max_keep out: train.keep_last_states and train.keep_last_exports "
                          "prune the two separately on this backend too")
    return merge(doc, overrides)


def _lookup(doc: Dict[str, Any], dotted: str) -> Any:
    """doc's value at a dotted key, None when absent."""
    for part in dotted.split("."):
        if not isinstance(doc, dict) or part not in doc:
            return None
        doc = doc[part]
    return doc


def merge(base: Dict[str, Any], extra: Dict[str, Any]) -> Dict[str, Any]:
    """`extra` onto a copy of `base`, table by table (a scalar in `extra` replaces the value)."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
