"""stage=sft backend=cosmos_rl: render and validate the cosmos-rl TOML, launch cosmos-rl on our entry script,
publish its Hugging Face exports as checkpoints/step_N.

plan() renders and validates the TOML completely (strict 0.4.7 key check, then cosmos-rl's own pydantic
validation when it is importable) and, outside dry runs, checks that cosmos-rl, redis-server, redis-cli and the GPUs
are there and that cosmos-rl's environment imports what its roles need: every problem stops the run
before its directory is kept.
"""

import logging
import shutil
from pathlib import Path
from typing import Any, Dict, Optional


from cosmos_exp.config.schema import Config
from cosmos_exp import rundir
from cosmos_exp.config import ConfigError
from cosmos_exp.config.batch import batch_layout
from cosmos_exp.plan import Plan
from cosmos_exp.repro.atomic import write_json_atomic
from cosmos_exp.train.checkpoint import retention_note
from cosmos_exp.train.data import order_note
from cosmos_exp.train.cosmos_rl import render
from cosmos_exp.train.cosmos_rl.document import (PLACEHOLDER_RUN_DIR, check_shell_safe, toml_text, validated_document,
                                                 write_toml)
from cosmos_exp.train.cosmos_rl.entry import CACHE_PREFIX, REPORT_PREFIX
from cosmos_exp.train.cosmos_rl.environment import PYTHONPATH_DIR, launcher_version, role_env, video_reader_note
from cosmos_exp.train.cosmos_rl.launch import LaunchError, launch_argv, preflight, preflight_error, run_launcher
from cosmos_exp.train.cosmos_rl.overlong import prepare_training_split

log = logging.getLogger("cosmos_exp")
SCHEMA_VERSION = "0.4.7"  # the cosmos-rl release schema.py and the pydantic check are written against


def _count(cfg: Config) -> Optional[int]:
    from cosmos_exp.data.datasets import count_items

    return count_items(cfg.dataset, cfg.dataset.train_split)


def _plan_run_dir(cfg: Config) -> Path:
    if cfg.dry_run:
        return PLACEHOLDER_RUN_DIR
    try:
        from hydra.core.hydra_config import HydraConfig

        return Path(HydraConfig.get().runtime.output_dir).absolute()
    except ValueError:  # called outside a Hydra app (tests, scripts)
        return PLACEHOLDER_RUN_DIR


def plan(cfg: Config) -> Plan:
    p = Plan(stage="sft")
    n_train = _count(cfg)
    if n_train == 0:
        raise ConfigError("dataset.root", f"no training items under {cfg.dataset.root}/{cfg.dataset.train_split}",
                          "generate or point at a dataset with items")
    run_dir = _plan_run_dir(cfg)
    doc, pydantic_note = validated_document(cfg, run_dir)
    p.add_input("model", str(cfg.model.path))
    p.add_input(f"train items ({cfg.dataset.train_split})", str(cfg.dataset.root), n_train)
    p.outputs += [render.TOML_NAME, f"{render.LOG_DIR}/logs_<time>/controller.log, policy_<i>.log",
                  f"{render.OUTPUT_ROOT}/{render.TIMESTAMP}/checkpoints/step_N/policy/ (cosmos-rl training state)",
                  f"{render.OUTPUT_ROOT}/{render.TIMESTAMP}/safetensors/step_N/ (Hugging Face exports)",
                  f"{rundir.CHECKPOINTS_DIR}/step_N/ (links to the exports) and {rundir.CHECKPOINTS_DIR}/{rundir.LATEST}",
                  f"{render.OUTPUT_ROOT}/{REPORT_PREFIX}<split>.json (skipped items, by file and reason)",
                  f"{render.OUTPUT_ROOT}/{CACHE_PREFIX}<split>.json (the conversations: the training split's "
                  f"built before the launch, items over model_max_length={cfg.model.model_max_length} tokens "
                  f"{'refused' if cfg.backend.overlong == 'refuse' else 'left out'} (backend.overlong); the "
                  "held-out split's by the first role)", f"{rundir.METRICS_JSONL} (loss, grad_norm, lr, eval_loss per step)",
                  rundir.TRAIN_RESULT]
    check_shell_safe(cfg, run_dir)
    p.commands.append(launch_argv(cfg, run_dir))
    par = doc["policy"]["parallelism"]
    p.notes.append(f"TOML {run_dir / render.TOML_NAME}: strict cosmos-rl 0.4.7 key check passed; {pydantic_note}")
    per_rank, mini = doc["train"]["train_batch_per_replica"], doc["train"]["train_policy"]["mini_batch"]
    p.notes.append(f"{batch_layout(cfg).describe()} (cosmos-rl: train_batch_per_replica {per_rank} per rank x "
                   f"dp_shard {par['dp_shard_size']} x dp_replicate {par['dp_replicate_size']}, in mini-batches of "
                   f"{mini})")
    p.notes.append(order_note(cfg) + ("" if doc["train"]["train_policy"]["dataloader_shuffle"] else
                                      " (dataloader_shuffle false: its per-rank samplers keep the blocks)"))
    p.notes.append(f"cosmos-rl: {par['tp_size'] * par['dp_shard_size']} GPU(s) (tp {par['tp_size']} x dp_shard "
                   f"{par['dp_shard_size']}), {doc['train']['epoch']} epoch(s)"
                   + (f" or {doc['train']['max_num_steps']} steps" if "max_num_steps" in doc["train"] else "") + ", "
                   f"checkpoint every {doc['train']['ckpt']['save_freq']} steps, resume={doc['train']['resume']}")
    p.notes.append(f"{retention_note(cfg.train)}; cosmos-rl's own max_keep is -1 (it would delete each export with "
                   f"its state): cosmos-exp prunes them separately every backend.checkpoint_poll_s="
                   f"{cfg.backend.checkpoint_poll_s:g} s while it runs and at its end")
    p.notes.append(f"cosmos-rl's roles import cosmos_exp from {run_dir / PYTHONPATH_DIR} (a link to this package, "
                   "nothing else of this environment) with its launcher's bin/ first on PATH")
    p.notes.append(video_reader_note(cfg))
    p.notes.append("clip cache: does not apply on backend=cosmos_rl; cosmos-rl decodes and preprocesses every clip "
                   "in its own data packer, every epoch (clip_cache is used by backend=deepspeed, caption, evaluate)")
    if cfg.train.eval_every:
        p.notes.append(f"held-out loss every {cfg.train.eval_every} steps on {cfg.dataset.eval_split} "
                       "(eval_loss in metrics.jsonl)")
    exe = shutil.which(str(cfg.backend.executable))
    version = launcher_version(exe) if exe else None
    if version is not None:
        p.notes.append(f"cosmos-rl {version} beside {exe}" + ("" if version == SCHEMA_VERSION else
                       f": the TOML is checked against the {SCHEMA_VERSION} schema, keys may differ"))
    problems = preflight(cfg)
    if problems and not cfg.dry_run:
        raise preflight_error(problems)
    for key, message, hint in problems:
        p.notes.append(f"launch check ({key}): {message} ({hint})")
    if not problems:
        p.notes.append("launch check: cosmos-rl's environment imports what its roles need; redis-server, "
                       "redis-cli and the GPUs are there")
    if cfg.dry_run:  # the file itself, as a launch writes it (a real run has it in the run directory)
        p.documents.append((str(run_dir / render.TOML_NAME), toml_text(doc)))
    return p


def run(cfg: Config, run_dir: Path) -> Dict[str, Any]:
    from cosmos_exp.train.cosmos_rl.checkpoints import sync_checkpoints
    from cosmos_exp.train.cosmos_rl.retention import prune

    run_dir = Path(run_dir).absolute()
    toml_path, doc = write_toml(cfg, run_dir)
    problems = preflight(cfg)
    if problems:
        raise LaunchError(str(preflight_error(problems)))
    if not (run_dir / rundir.RESOLVED_YAML).is_file():
        raise LaunchError(f"{run_dir}/{rundir.RESOLVED_YAML} is missing: the entry script reads the config from it")
    (run_dir / render.LOG_DIR).mkdir(parents=True, exist_ok=True)
    for stale in (run_dir / render.OUTPUT_ROOT).glob(f"{CACHE_PREFIX}*.json"):
        stale.unlink()  # the entry's dataset cache of an earlier launch: this launch sees the data as it is now
    log.info("training data: %s", prepare_training_split(cfg, run_dir))  # over-long items refused or left out
    argv = launch_argv(cfg, run_dir)
    t = cfg.train

    def housekeeping(settle_s: float) -> list:
        """Retention (retention.py), then the exports published as checkpoints/step_N."""
        removed = prune(run_dir, doc, t.keep_last_states, t.keep_last_exports)
        if removed["states"] or removed["exports"]:
            log.info("retention: training states removed %s, exports removed %s", removed["states"] or "none",
                     removed["exports"] or "none")
        return sync_checkpoints(run_dir, settle_s=settle_s)

    try:
        # Exports show up as checkpoints/step_N while training runs (a sweep can caption them early).
        # While it runs, an export is published once its files went unchanged for two polls.
        poll_s = float(cfg.backend.checkpoint_poll_s)
        code = run_launcher(argv, run_dir, env=role_env(cfg, run_dir), every=lambda: housekeeping(2 * poll_s),
                            every_s=poll_s)
    finally:
        published = housekeeping(0.0)  # an interrupted or failed run still shows what it exported
    result: Dict[str, Any] = {
        "backend": "cosmos_rl", "toml": str(toml_path), "argv": argv, "exit_status": code,
        "output_dir": doc["train"]["output_dir"], "checkpoints": [p.name for p in published],
        "latest": published[-1].name if published else None,
    }
    write_json_atomic(run_dir / rundir.TRAIN_RESULT, result)
    if code != 0:
        raise LaunchError(f"cosmos-rl exited with status {code}; see {run_dir / render.LOG_DIR}/logs_*/"
                          "controller.log and policy_*.log")
    return result
