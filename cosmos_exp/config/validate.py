"""Every rule on config values, checked on the composed config before any work starts.

Type and key errors are caught earlier by the schema; here live the rules on values, across fields, and
on the paths a config names. A stage's plan() adds only the checks that need its inputs' contents (caption
files, rubric files, the environment). Every failure is a ConfigError naming the key and saying what to change.
"""

import json
import os
from pathlib import Path
from typing import Callable, List, Optional

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from cosmos_exp.config.batch import batch_layout
from cosmos_exp.config.errors import ConfigError
from cosmos_exp.config.names import (BACKENDS, BLEND_BATCHES, BLEND_SOURCE_KINDS, BLEU_SCALES, COSMOS_RL_LOGGERS,
                                     DATASET_KINDS, DIRECTIONS, DIST_BACKENDS, DRIVING_KINDS, ENGINES, FAMILIES,
                                     LOGGERS, LR_SCHEDULES, MCQ_OPTION_ORDERS, METRICS, OVERLONG_POLICIES, PICKS,
                                     PYDANTIC_MODES, RIG_CHANGE_PHASES, STAGES, STAGES_NEEDING_DATA,
                                     STAGES_NEEDING_MODEL, TARGET_FORMATS, TASK_KINDS, TRAJECTORY_METRICS,
                                     TRAJECTORY_STAGES, VIDEO_BACKENDS)
from cosmos_exp.config.schema import Config


def typed(cfg: DictConfig) -> Config:
    """Merge `cfg` onto the schema so keys and types are checked however it was composed
    (a saved config replayed by cosmos-exp-reproduce has no defaults list). The result is a read-only
    DictConfig that carries the schema's types; functions name it by its dataclass, `Config`."""
    # Through a plain container: a node Hydra composed keeps its schema type, and keys added to it with
    # `+key=`/`++key=` would ride along unchecked; untyped, every key is checked against the schema.
    plain = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    try:
        merged = OmegaConf.merge(OmegaConf.structured(Config), plain)
    except OmegaConfBaseException as err:
        message = str(err).splitlines()[0]
        hint = "no such key in the schema: check its spelling (cosmos-exp --cfg job lists every key)" if "not in" in message else ""
        raise ConfigError(str(getattr(err, "full_key", "") or "?"), message, hint) from None
    OmegaConf.set_readonly(merged, True)
    return merged


def _one_of(key: str, value: object, allowed: tuple) -> None:
    if value not in allowed:
        raise ConfigError(key, f"{value!r} is not one of {', '.join(allowed)}")


def _missing_keys(node: object, prefix: str = "") -> List[str]:
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, list):
        items = ((f"[{i}]", v) for i, v in enumerate(node))
    else:
        return [prefix] if node == "???" else []
    found: List[str] = []
    for key, value in items:
        sep = "" if str(key).startswith("[") or not prefix else "."
        found += _missing_keys(value, f"{prefix}{sep}{key}")
    return found


def check_missing(cfg: Config) -> None:
    # OmegaConf.missing_keys resolves interpolations and trips over ${x} pointing at a missing x.
    missing = _missing_keys(OmegaConf.to_container(cfg, resolve=False))
    if missing:
        raise ConfigError(missing[0], "a required value is missing (???)",
                          "set it on the command line, e.g. " + " ".join(f"{k}=..." for k in missing))


def check_choices(cfg: Config) -> None:
    _one_of("stage.name", cfg.stage.name, STAGES)
    _one_of("backend.name", cfg.backend.name, BACKENDS)
    _one_of("model.family", cfg.model.family, FAMILIES)
    _one_of("dataset.kind", cfg.dataset.kind, DATASET_KINDS)
    _one_of("dataset.vision.backend", cfg.dataset.vision.backend, VIDEO_BACKENDS)
    _one_of("train.lr_schedule", cfg.train.lr_schedule, LR_SCHEDULES)
    _one_of("task.kind", cfg.task.kind, TASK_KINDS)
    _one_of("parallelism.dist_backend", cfg.parallelism.dist_backend, DIST_BACKENDS)
    _one_of("generation.engine", cfg.generation.engine, ENGINES)
    for i, logger in enumerate(cfg.train.loggers):
        _one_of(f"train.loggers[{i}]", logger, LOGGERS)
    _one_of("backend.pydantic_check", cfg.backend.pydantic_check, PYDANTIC_MODES)
    _one_of("backend.overlong", cfg.backend.overlong, OVERLONG_POLICIES)
    _one_of("dataset.target_format", cfg.dataset.target_format, TARGET_FORMATS)


def check_vision(cfg: Config) -> None:
    v = cfg.dataset.vision
    if (v.nframes is None) == (v.fps is None):
        raise ConfigError("dataset.vision.nframes", "set exactly one of nframes and fps "
                          f"(got nframes={v.nframes}, fps={v.fps})",
                          "the Qwen-VL processors and cosmos-rl reject both; e.g. dataset.vision.fps=null")
    if v.nframes is not None and v.nframes < 1:
        raise ConfigError("dataset.vision.nframes", f"must be >= 1, got {v.nframes}")
    if v.fps is not None and v.fps <= 0:
        raise ConfigError("dataset.vision.fps", f"must be > 0, got {v.fps}")
    if v.min_frames < 1 or v.min_frames > v.max_frames:
        raise ConfigError("dataset.vision.min_frames", f"need 1 <= min_frames <= max_frames, got {v.min_frames} > {v.max_frames}")
    if v.min_pixels > v.max_pixels:
        raise ConfigError("dataset.vision.min_pixels", f"min_pixels {v.min_pixels} exceeds max_pixels {v.max_pixels}")
    if v.total_pixels is not None and v.total_pixels < v.min_pixels:
        raise ConfigError("dataset.vision.total_pixels", f"{v.total_pixels} is below min_pixels {v.min_pixels}")
    if cfg.clip_cache.enabled and not cfg.clip_cache.max_gb > 0:
        raise ConfigError("clip_cache.max_gb", f"must be > 0, got {cfg.clip_cache.max_gb}",
                          "or switch the cache off with clip_cache.enabled=false")


def check_dataset(cfg: Config) -> None:
    d = cfg.dataset
    if d.kind == "blend":
        if not d.blend:
            raise ConfigError("dataset.blend", "kind=blend needs at least one component")
        names = [c.name for c in d.blend]
        for i, comp in enumerate(d.blend):
            key = f"dataset.blend[{i}]"
            if comp.weight <= 0:
                raise ConfigError(f"{key}.weight", f"must be > 0, got {comp.weight}")
            if names.count(comp.name) > 1:
                raise ConfigError(f"{key}.name", f"{comp.name!r} names two sources; each report is kept by name")
            _one_of(f"{key}.kind", comp.kind, BLEND_SOURCE_KINDS)
            if comp.kind != "caption" and (comp.caption_keys is not None or comp.target_format is not None):
                raise ConfigError(f"{key}.kind", f"caption_keys and target_format describe caption answers, not "
                                  f"{comp.kind} ones", "drop them from this source")
            if comp.caption_keys is not None and (not comp.caption_keys or comp.user_prompt is None):
                raise ConfigError(f"{key}.user_prompt", "a caption source with its own caption_keys needs its own "
                                  "user_prompt (the default prompt asks for the 15 cookbook keys), and at least one key",
                                  "add a prompt file to cosmos_exp/data/prompts/ and name it here")
            if comp.target_format is not None:
                _one_of(f"{key}.target_format", comp.target_format, TARGET_FORMATS)
    elif d.blend:
        raise ConfigError("dataset.blend", f"components are only read when kind=blend (kind={d.kind})")
    _one_of("dataset.blend_batches", d.blend_batches, BLEND_BATCHES)
    if d.blend_batches != "mixed" and d.kind != "blend":
        raise ConfigError("dataset.blend_batches", f"per-source batches need sources: kind=blend, not {d.kind}")
    if d.synthetic is not None:
        _one_of("dataset.synthetic.mcq_option_order", d.synthetic.mcq_option_order, MCQ_OPTION_ORDERS)
    if d.kind == "physical_ai_av" and d.physical_ai_av is None:
        raise ConfigError("dataset.physical_ai_av", "kind=physical_ai_av needs the reader's settings",
                          "use dataset=physical_ai_av (conf/dataset/physical_ai_av.yaml)")
    if d.lingoqa_parquet and d.kind != "lingoqa":
        raise ConfigError("dataset.lingoqa_parquet", f"the LingoQA parquet is converted only for kind=lingoqa, not {d.kind}",
                          "use dataset=lingoqa, or set dataset.lingoqa_parquet=null")
    if d.driving_synthetic is not None and d.kind != "driving":
        raise ConfigError("dataset.driving_synthetic", f"synthetic driving scenes are clips of kind=driving, not {d.kind}")
    if d.kind in DRIVING_KINDS and cfg.stage.name == "caption":
        raise ConfigError("dataset.kind", f"dataset.kind={d.kind} holds trajectory clips, which stage=caption cannot "
                          "answer", "score a trajectory checkpoint with stage=evaluate")
    if cfg.stage.name == "sft" and (d.kind in DRIVING_KINDS) != (cfg.task.kind == "trajectory"):
        if cfg.task.kind == "trajectory":
            raise ConfigError("dataset.kind", f"task={cfg.task.name} trains on driving clips, not dataset.kind={d.kind}",
                              "use dataset=driving_synthetic or dataset=physical_ai_av")
        raise ConfigError("dataset.kind", f"dataset.kind={d.kind} holds trajectory clips; caption SFT trains on "
                          "conversations", "train them with a trajectory task, e.g. task=trajectory_stage1")


def check_dataset_root(cfg: Config) -> None:
    d = cfg.dataset
    if cfg.stage.name in STAGES_NEEDING_DATA:
        roots = [("dataset.root", d.root)] if d.kind != "blend" else [
            (f"dataset.blend[{i}].root", c.root) for i, c in enumerate(d.blend)]
        for key, root in roots:
            if not Path(root).is_dir():
                generated = d.synthetic is not None or d.driving_synthetic is not None
                hint = ("generate it first: cosmos-exp stage=prepare dataset=" + d.name) if generated else \
                    "point it at your copy of the data"
                raise ConfigError(key, f"directory {root} does not exist", hint)


def world_size(cfg: Config) -> int:
    return cfg.parallelism.nnodes * cfg.parallelism.nproc_per_node


def _srun_tasks() -> Optional[str]:
    """SLURM_NTASKS of a task that srun started with others (one task alone may start its own ranks)."""
    if os.environ.get("SLURM_PROCID") is None:
        return None
    tasks = os.environ.get("SLURM_NTASKS", "1")
    return tasks if tasks.isdigit() and int(tasks) > 1 else None


def check_parallelism(cfg: Config) -> None:
    p = cfg.parallelism
    if p.nnodes < 1 or p.nproc_per_node < 1:
        raise ConfigError("parallelism.nproc_per_node", "nnodes and nproc_per_node must be >= 1")
    if not 0 <= p.zero_stage <= 3:
        raise ConfigError("parallelism.zero_stage", f"DeepSpeed ZeRO stages are 0..3, got {p.zero_stage}")
    if p.offload_param and p.zero_stage != 3:
        raise ConfigError("parallelism.offload_param", "parameter offload needs zero_stage=3")
    if p.offload_optimizer and p.zero_stage == 0:
        raise ConfigError("parallelism.offload_optimizer", "optimizer offload needs zero_stage >= 1")
    world = world_size(cfg)
    # torchrun's WORLD_SIZE, or the task count of an srun launch (hydra/launcher=slurm with tasks_per_node > 1)
    launched = os.environ.get("WORLD_SIZE") or _srun_tasks()
    if launched is not None and cfg.stage.name in ("sft", "caption") and int(launched) != world:
        raise ConfigError("parallelism.nproc_per_node",
                          f"the launcher starts {launched} processes (torchrun's WORLD_SIZE or the SLURM job's tasks) "
                          f"but nnodes*nproc_per_node={world}",
                          "make parallelism match the launcher (with hydra/launcher=slurm: hydra.launcher.nodes x "
                          "tasks_per_node, or tasks_per_node=1 and cosmos-exp starts the ranks itself)")
    if cfg.backend.name == "cosmos_rl":
        shard = world // p.tp_size if p.dp_shard_size == -1 else p.dp_shard_size
        if p.tp_size < 1 or shard * p.tp_size != world:
            raise ConfigError("parallelism.dp_shard_size",
                              f"tp_size ({p.tp_size}) x dp_shard_size ({shard}) must equal the world size ({world})")


def check_train(cfg: Config) -> None:
    t = cfg.train
    if (t.warmup_steps is None) == (t.warmup_ratio is None):
        raise ConfigError("train.warmup_steps", "set exactly one of warmup_steps and warmup_ratio",
                          "e.g. train.warmup_ratio=null train.warmup_steps=100")
    if t.warmup_ratio is not None and not 0 <= t.warmup_ratio < 1:
        raise ConfigError("train.warmup_ratio", f"must be in [0, 1), got {t.warmup_ratio}")
    if t.warmup_steps is not None and t.warmup_steps < 0:
        raise ConfigError("train.warmup_steps", f"must be >= 0, got {t.warmup_steps}")
    if t.lr <= 0:
        raise ConfigError("train.lr", f"must be > 0, got {t.lr}")
    if len(t.betas) != 2:
        raise ConfigError("train.betas", f"AdamW takes two betas, got {list(t.betas)}")
    batch_layout(cfg)  # global_batch_size splits evenly over the data-parallel ranks
    if t.save_every < 1:
        raise ConfigError("train.save_every", f"must be >= 1, got {t.save_every}")
    for key in ("keep_last_states", "keep_last_exports"):
        if getattr(t, key) is not None and getattr(t, key) < 1:
            raise ConfigError(f"train.{key}", f"must be >= 1 or null (keep all), got {getattr(t, key)}")


def check_train_resume(cfg: Config) -> None:
    t = cfg.train
    if t.resume not in ("auto", "none") and not Path(t.resume).is_dir():
        raise ConfigError("train.resume", f"checkpoint {t.resume} does not exist",
                          "use auto, none, or an existing checkpoints/step_N directory")


def check_model(cfg: Config) -> None:
    m = cfg.model
    stage = cfg.stage.name
    if stage not in STAGES_NEEDING_MODEL:
        return
    if m.path is None:
        raise ConfigError("model.path", f"stage={stage} needs a checkpoint", "set model.path=<local HF directory>")


def check_model_files(cfg: Config) -> None:
    m = cfg.model
    if cfg.stage.name not in STAGES_NEEDING_MODEL:
        return
    path = Path(m.path)
    if not path.is_dir():
        hint = f"build it first: cosmos-exp stage=prepare model={m.name}" if m.tiny is not None else \
            "point model.path at a local Hugging Face directory or a checkpoints/step_N of a run"
        raise ConfigError("model.path", f"checkpoint {path} does not exist", hint)
    config_file = path / "config.json"
    try:
        model_type = json.loads(config_file.read_text()).get("model_type")
    except (OSError, ValueError) as err:
        raise ConfigError("model.path", f"cannot read {config_file}: {err}",
                          "a Hugging Face checkpoint directory has a config.json") from None
    if model_type != m.family:
        raise ConfigError("model.family", f"{config_file} says model_type={model_type!r} but model.family={m.family!r}",
                          "pick the model preset of the checkpoint's family")


def check_generation(cfg: Config) -> None:
    g = cfg.generation
    if g.batch_size < 1:
        raise ConfigError("generation.batch_size", f"must be >= 1, got {g.batch_size}")
    if g.do_sample and g.temperature <= 0:
        raise ConfigError("generation.temperature", "sampling (do_sample=true) needs temperature > 0")
    if not 0 < g.top_p <= 1:
        raise ConfigError("generation.top_p", f"must be in (0, 1], got {g.top_p}")
    if g.max_new_tokens < 1:
        raise ConfigError("generation.max_new_tokens", f"must be >= 1, got {g.max_new_tokens}")
    if g.repetition_penalty <= 0:
        raise ConfigError("generation.repetition_penalty", f"must be > 0, got {g.repetition_penalty}")
    if g.max_items is not None and g.max_items < 1:
        raise ConfigError("generation.max_items", f"must be >= 1 or null, got {g.max_items}")
    if g.output_dir is not None and Path(g.output_dir).exists() and not Path(g.output_dir).is_dir():
        raise ConfigError("generation.output_dir", f"{g.output_dir} exists and is not a directory")


def check_eval(cfg: Config) -> None:
    e = cfg.eval
    if not e.metrics:
        raise ConfigError("eval.metrics", "no metric chosen", f"choose from {list(METRICS)}")
    for i, metric in enumerate(e.metrics):
        _one_of(f"eval.metrics[{i}]", metric, METRICS)
    if "lingoqa" in e.metrics and cfg.stage.name in ("judge", "evaluate"):
        if not e.lingo_judge_path:
            raise ConfigError("eval.lingo_judge_path", "metric lingoqa is the benchmark's Lingo-Judge classifier and "
                              "needs its local directory", "download wayveai/Lingo-Judge and point at it, or score "
                              "with eval=lingoqa_llm (an LLM-judge substitute, not comparable with LingoQA numbers)")
        if not (Path(e.lingo_judge_path) / "config.json").is_file():
            raise ConfigError("eval.lingo_judge_path", f"{e.lingo_judge_path}/config.json not found",
                              "point at a local Lingo-Judge directory")
    _one_of("eval.bleu_scale", e.bleu_scale, BLEU_SCALES)
    if not 0 < e.confidence < 1:
        raise ConfigError("eval.confidence", f"must be in (0, 1), got {e.confidence}")
    if e.judge.concurrency < 1:
        raise ConfigError("eval.judge.concurrency", f"must be >= 1, got {e.judge.concurrency}")
    if e.judge.max_cost_usd is not None and e.judge.max_cost_usd < 0:
        raise ConfigError("eval.judge.max_cost_usd", f"must be >= 0, got {e.judge.max_cost_usd}")


def check_task(cfg: Config) -> None:
    """What a trajectory task needs; the checks of model.path's contents (the trajectory tokens, an expert's
    settings) are the sft stage's plan (cosmos_exp/train/trajectory_task.check_checkpoint)."""
    task = cfg.task
    stage = cfg.stage.name
    if task.kind == "caption":
        if task.trajectory is not None:
            raise ConfigError("task.trajectory", "trajectory settings are read only when task.kind=trajectory",
                              "pick a trajectory preset (task=trajectory_stage1) or drop them")
        traj = [m for m in cfg.eval.metrics if m in TRAJECTORY_METRICS]
        if traj and stage in ("judge", "evaluate"):
            raise ConfigError("eval.metrics", f"{traj[0]} scores a trajectory checkpoint's predictions, not captions",
                              "evaluate a trajectory checkpoint with a trajectory task (e.g. "
                              "task=trajectory_stage2 eval=trajectory), or pick a caption eval preset")
        return
    tr = task.trajectory
    if tr is None:
        raise ConfigError("task.trajectory", "task.kind=trajectory needs the trajectory settings",
                          "use a preset: task=trajectory_stage1, trajectory_stage2 or trajectory_cotrain")
    _one_of("task.trajectory.stage", tr.stage, TRAJECTORY_STAGES)
    a = tr.action_space
    if a.token_bins < 2:
        raise ConfigError("task.trajectory.action_space.token_bins", f"must be >= 2, got {a.token_bins}")
    if a.token_max <= a.token_min:
        raise ConfigError("task.trajectory.action_space.token_max",
                          f"must exceed token_min ({a.token_min}), got {a.token_max}")
    if tr.token_loss_weight < 0:
        raise ConfigError("task.trajectory.token_loss_weight", f"must be >= 0, got {tr.token_loss_weight}")
    if stage == "caption":
        raise ConfigError("task", "stage=caption generates captions; a trajectory checkpoint is scored with "
                          "stage=evaluate eval=trajectory", "use task=caption, or stage=evaluate")
    if stage == "evaluate" and list(cfg.eval.metrics) != list(TRAJECTORY_METRICS):
        raise ConfigError("eval.metrics", f"a trajectory task is scored with {list(TRAJECTORY_METRICS)}, not "
                          f"{list(cfg.eval.metrics)}", "use eval=trajectory")
    if stage != "sft":
        return
    if cfg.backend.name == "cosmos_rl":
        raise ConfigError("task", "cosmos-rl trains captions only; use backend=deepspeed")
    if cfg.model.family != "qwen3_vl":
        raise ConfigError("model.family", f"the trajectory model needs a Qwen3-VL backbone (Cosmos-Reason2), not "
                          f"{cfg.model.family}", "e.g. model=cosmos_reason2_8b or model=tiny_qwen3_vl")
    if cfg.parallelism.zero_stage == 3:
        raise ConfigError("parallelism.zero_stage", "trajectory tasks train with ZeRO 0-2 (the reference stage 1 "
                          "uses ZeRO-2); ZeRO-3 checkpoints of the backbone and expert are not written yet",
                          "use parallelism=zero2 or ddp")
    if tr.stage == "stage2" and cfg.train.freeze:
        raise ConfigError("train.freeze", "stage 2 freezes the whole backbone already; only the expert trains",
                          "set train.freeze=[]")
    if tr.stage == "cotrain" and cfg.train.gradient_checkpointing:
        raise ConfigError("train.gradient_checkpointing", "co-training reads the backbone's KV cache, which "
                          "gradient checkpointing turns off in training", "set train.gradient_checkpointing=false")


def check_backend(cfg: Config) -> None:
    """What backend=cosmos_rl can render (it trains stage=sft; other stages ignore the backend)."""
    b, t = cfg.backend, cfg.train
    if b.name != "cosmos_rl" or cfg.stage.name != "sft":
        return
    for i, name in enumerate(t.loggers):
        if name not in COSMOS_RL_LOGGERS:
            raise ConfigError(f"train.loggers[{i}]", f"backend=cosmos_rl logs to {' and '.join(COSMOS_RL_LOGGERS)} "
                              f"only, not {name}", "drop it from train.loggers")
    if t.module_lr:
        raise ConfigError("train.module_lr", "per-module learning rates are not mapped to cosmos-rl yet",
                          "use backend=deepspeed, or set train.module_lr=[]")
    if cfg.parallelism.nnodes > 1:
        raise ConfigError("parallelism.nnodes", "backend=cosmos_rl launches on one node for now",
                          "multi-node needs cosmos-rl --num-workers/--worker-idx/--node-ip-list; not wired yet")
    for key in ("redis_port", "controller_port"):
        if not 0 < b[key] < 65536:
            raise ConfigError(f"backend.{key}", f"{b[key]} is not a TCP port")
    if b.redis_port == b.controller_port:
        raise ConfigError("backend.controller_port", f"redis-server and the controller cannot share port {b.redis_port}")
    if b.checkpoint_poll_s <= 0:
        raise ConfigError("backend.checkpoint_poll_s", f"must be > 0 seconds, got {b.checkpoint_poll_s}")


def check_stage_inputs(cfg: Config) -> None:
    """Earlier runs a stage reads by path, and inputs a stage cannot take."""
    stage = cfg.stage.name
    needed = {"judge": ("captions",), "compare": ("a", "b")}.get(stage, ())
    for key in needed:
        if cfg[key] is None:
            raise ConfigError(key, f"stage={stage} needs {key}=<run directory>")
    if stage == "report" and not cfg.sweep.dir:
        raise ConfigError("sweep.dir", "stage=report needs the multirun directory to aggregate",
                          "pass sweep.dir=<the directory a cosmos-exp -m run printed>")
    if stage == "evaluate":
        if cfg.captions:
            raise ConfigError("captions", "stage=evaluate captions into its own run directory",
                              "drop captions=..., or use stage=judge to score an existing caption run")
        if cfg.generation.output_dir:
            raise ConfigError("generation.output_dir", "stage=evaluate keeps captions in its run directory",
                              "resume an evaluation by rerunning into the same hydra.run.dir / hydra.sweep.dir")


def check_input_runs(cfg: Config) -> None:
    """The earlier runs a stage reads exist (up to the first one not given: check_stage_inputs names it)."""
    for key in {"judge": ("captions",), "compare": ("a", "b")}.get(cfg.stage.name, ()):
        if cfg[key] is None:
            return
        if not Path(cfg[key]).is_dir():
            raise ConfigError(key, f"run directory {cfg[key]} does not exist")
    if cfg.stage.name == "report" and cfg.sweep.dir and not Path(cfg.sweep.dir).expanduser().is_dir():
        raise ConfigError("sweep.dir", f"{cfg.sweep.dir} is not a directory")


def check_rig_change(cfg: Config) -> None:
    """stage=rig_change: the study's own settings (each run it starts is validated as that run, by the stage)."""
    if cfg.stage.name != "rig_change":
        return
    study = cfg.rig_change
    if study is None:
        raise ConfigError("rig_change", "stage=rig_change needs the study's settings", "use experiment=rig_change")
    if study.rig_a == study.rig_b:
        raise ConfigError("rig_change.rig_b", f"the study changes rigs; rig_b equals rig_a ({study.rig_a!r})")
    if cfg.dataset.kind != "driving":
        raise ConfigError("dataset.kind", f"the study reads the rig folders (<split>/<rig>/) of a driving dataset, "
                          f"not dataset.kind={cfg.dataset.kind}", "use dataset=driving_synthetic")
    synthetic = cfg.dataset.driving_synthetic
    if synthetic is not None:
        made = (synthetic.rig_a.name, synthetic.rig_b.name)
        for key in ("rig_a", "rig_b"):
            if study[key] not in made:
                raise ConfigError(f"rig_change.{key}", f"{study[key]!r} is not a rig of the synthetic scenes "
                                  f"({', '.join(made)})")
    elif study.own_data:
        raise ConfigError("rig_change.own_data", "only generated scenes can be made inside the study directory",
                          "set rig_change.own_data=false to read dataset.root")
    for phase in RIG_CHANGE_PHASES:
        if study[phase].steps < 1:
            raise ConfigError(f"rig_change.{phase}.steps", f"must be >= 1, got {study[phase].steps}")
        if study[phase].lr is not None and study[phase].lr <= 0:
            raise ConfigError(f"rig_change.{phase}.lr", f"must be > 0 or null, got {study[phase].lr}")


def check_sweep(cfg: Config) -> None:
    """The sweep node's choices; what a search's objective needs is checked when a search runs it
    (sweep/objective.check)."""
    s = cfg.sweep
    _one_of("sweep.pick", s.pick, PICKS)
    if s.objective.direction is not None:
        _one_of("sweep.objective.direction", s.objective.direction, DIRECTIONS)
    if cfg.stage.name == "train_eval" and s.pick == "best" and not cfg.train.eval_every:
        raise ConfigError("sweep.pick", "best is the checkpoint with the lowest held-out loss; this run computes none",
                          "set train.eval_every (a multiple of train.save_every), or sweep.pick=final")


RULES: List[Callable[[Config], None]] = [
    # the task before the dataset: which stage and backend a task needs is the more telling error
    check_missing, check_choices, check_model, check_model_files, check_task, check_vision, check_dataset,
    check_dataset_root, check_parallelism, check_train, check_train_resume, check_generation, check_eval,
    check_backend, check_input_runs, check_stage_inputs, check_rig_change, check_sweep,
]
# The rules on the files and directories a config names: a study checks the settings of its later runs before
# the checkpoints and data those read exist (validate(cfg, inputs=False)).
INPUT_RULES = (check_model_files, check_dataset_root, check_train_resume, check_input_runs)


def validate(cfg: Config, inputs: bool = True) -> None:
    """Run every rule (with inputs=False all but INPUT_RULES); the first failure raises a ConfigError naming its key."""
    for rule in RULES:
        if inputs or rule not in INPUT_RULES:
            rule(cfg)
