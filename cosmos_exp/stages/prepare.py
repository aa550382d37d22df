"""stage=prepare: make what the chosen dataset and model need before training or inference.

- dataset.synthetic set: generate the synthetic driving dataset at dataset.root (skipped when a stamp
  shows it was generated with the same settings);
- model.tiny set: build the random-initialised test model at model.path (same stamp rule);
- otherwise: scan the real dataset's splits and report every bad item (data_report.json); the official
  LingoQA evaluation parquet (dataset.lingoqa_parquet) is converted into its lingoqa.jsonl first.
"""

import json
from pathlib import Path
from typing import Any, Dict, List

from omegaconf import OmegaConf

from cosmos_exp import rundir
from cosmos_exp.config.names import DRIVING_KINDS
from cosmos_exp.config.schema import Config
from cosmos_exp.config.trajectory import ActionSpaceConfig
from cosmos_exp.config.errors import ConfigError
from cosmos_exp.plan import Plan
from cosmos_exp.repro.atomic import atomic_directory, write_json_atomic

STAMP = "cosmos_exp_prepared.json"


def _stamp_of(cfg_node: Any, kind: str, extra: Dict[str, Any]) -> Dict[str, Any]:
    return {"kind": kind, "settings": OmegaConf.to_container(cfg_node, resolve=True), **extra}


def _up_to_date(directory: Path, stamp: Dict[str, Any]) -> bool:
    try:
        return json.loads((directory / STAMP).read_text()) == stamp
    except (OSError, ValueError):
        return False


def _dataset_stamp(cfg: Config) -> Dict[str, Any]:
    d = cfg.dataset
    layout = {k: d[k] for k in ("train_split", "eval_split", "video_dir", "meta_dir", "camera_suffix",
                                "video_ext", "label_suffix")}
    return _stamp_of(d.synthetic, "synthetic_av", {"layout": layout})


def _model_stamp(cfg: Config) -> Dict[str, Any]:
    extra: Dict[str, Any] = {"family": cfg.model.family}
    if cfg.task.kind == "trajectory":  # the backbone also gets the task's trajectory tokens
        t = cfg.task.trajectory
        extra["trajectory_tokens"] = OmegaConf.to_container(OmegaConf.create(
            {"prompt": t.prompt, "action_space": t.action_space}), resolve=True)
    return _stamp_of(cfg.model.tiny, "tiny_model", extra)


def plan(cfg: Config) -> Plan:
    from cosmos_exp.data.datasets import count_items

    p = Plan("prepare")
    d, m = cfg.dataset, cfg.model
    root = Path(d.root)
    if d.synthetic is not None:
        if _up_to_date(root, _dataset_stamp(cfg)):
            p.notes.append(f"synthetic dataset at {root} is up to date: nothing to generate")
        else:
            p.outputs.append(f"{root}/{{{d.train_split},{d.eval_split}}}/ ({d.synthetic.num_train} train + "
                             f"{d.synthetic.num_eval} eval synthetic clips with labels)")
    elif d.driving_synthetic is not None:
        from cosmos_exp.data import driving_synthetic

        s = d.driving_synthetic
        if driving_synthetic.is_up_to_date(s, root, _action_space(cfg)):
            p.notes.append(f"synthetic driving scenes at {root} are up to date: nothing to generate")
        else:
            rigs = ", ".join(r.name for r in driving_synthetic.rigs(s))
            p.outputs.append(f"{root}/{{{d.train_split},{d.eval_split}}}/{{{rigs}}}/<scene>/ ({s.num_train} train + "
                             f"{s.num_eval} eval scenes, each through every rig; rig B at alpha {s.alpha})")
    elif d.kind == "physical_ai_av":
        p.add_input(f"{d.name} (PhysicalAI-AV layout)", str(root))
        p.outputs.append(f"{rundir.DATA_REPORT} (bad clips with file and reason)")
    elif d.kind != "blend":
        if not root.is_dir():
            raise ConfigError("dataset.root", f"directory {root} does not exist", "point it at your copy of the data")
        if _converts_lingoqa(cfg):
            if not Path(d.lingoqa_parquet).is_file():
                raise ConfigError("dataset.lingoqa_parquet", f"{d.lingoqa_parquet} does not exist",
                                  "point it at the official LingoQA evaluation parquet, or set it to null")
            p.add_input("LingoQA evaluation parquet", str(d.lingoqa_parquet))
            p.outputs.append(f"{root / d.eval_split}/lingoqa.jsonl (one item per question, its reference answers "
                             f"grouped; videos: frame folders under {root / d.lingoqa_frames_dir}/)")
        present = _present_splits(cfg)
        if not present:
            raise ConfigError("dataset.root", f"{root} holds neither split ({d.train_split}/ nor {d.eval_split}/)",
                              "point dataset.root at the folder that holds the split folders, or set "
                              "dataset.train_split / dataset.eval_split to their names")
        for split in present:
            if not (_converts_lingoqa(cfg) and split == d.eval_split):  # counted once converted
                p.add_input(f"{d.name} {split} items", str(root / split), count_items(d, split))
        for split in sorted({d.train_split, d.eval_split} - set(present)):
            p.notes.append(f"split {split}/ is not under {root}: not scanned")
        p.outputs.append(f"{rundir.DATA_REPORT} (bad items with file and reason)")
    if m.tiny is not None:
        path = Path(m.path)
        if _up_to_date(path, _model_stamp(cfg)):
            p.notes.append(f"tiny model at {path} is up to date: nothing to build")
        else:
            p.outputs.append(f"{path}/ (random-initialised {m.family} model + tokenizer + processor files"
                             + (", with the trajectory tokens of task=" + cfg.task.name if cfg.task.kind == "trajectory"
                                else "") + ")")
    if cfg.clip_cache.fill:
        if d.kind in DRIVING_KINDS:
            raise ConfigError("clip_cache.fill", f"dataset kind {d.kind!r} reads still images, not clips",
                              "set clip_cache.fill=false")
        if not cfg.clip_cache.enabled:
            raise ConfigError("clip_cache.fill", "the clip cache is off (clip_cache.enabled=false)",
                              "switch it on, or set clip_cache.fill=false")
        from cosmos_exp.data.feed import cores_available

        workers = cfg.clip_cache.fill_workers or cores_available()[0]
        p.outputs.append(f"{cfg.clip_cache.dir}/ (every clip of {', '.join(_fill_splits(cfg))} decoded and resized "
                         f"for {m.family}, {workers} processes; clips already cached are skipped)")
    if not p.outputs:
        p.notes.append("nothing to do")
    return p


def _fill_splits(cfg: Config) -> List[str]:
    d = cfg.dataset
    if d.synthetic is not None or d.kind == "blend":
        return list(dict.fromkeys((d.train_split, d.eval_split)))
    return _present_splits(cfg)


def _prepare_synthetic(cfg: Config) -> Dict[str, Any]:
    from cosmos_exp.data.synthetic import generate_synthetic_av

    root = Path(cfg.dataset.root)
    stamp = _dataset_stamp(cfg)
    if _up_to_date(root, stamp):
        return {"dataset": str(root), "generated": False}
    summary = generate_synthetic_av(cfg.dataset)
    write_json_atomic(root / STAMP, stamp)  # written last: an interrupted generation is redone
    return {"dataset": str(root), "generated": True, **summary}


def _action_space(cfg: Config) -> ActionSpaceConfig:
    """The action space the scenes' futures and histories are cut to: the trajectory task's when one is chosen
    (so the data matches what trains on it), else the reference's 64 steps of 0.1 s and 16 history steps."""
    return cfg.task.trajectory.action_space if cfg.task.kind == "trajectory" else ActionSpaceConfig()


def _prepare_driving_synthetic(cfg: Config) -> Dict[str, Any]:
    from cosmos_exp.data.driving_synthetic import generate_driving_synthetic
    from cosmos_exp.data.feed import cores_available

    try:
        return generate_driving_synthetic(cfg.dataset.driving_synthetic, cfg.dataset.root, _action_space(cfg),
                                          workers=cores_available()[0])
    except ValueError as err:  # settings the generator cannot draw, or a root it did not write
        raise ConfigError("dataset.driving_synthetic", str(err)) from None


def _scan_driving(cfg: Config, run_dir: Path) -> Dict[str, Any]:
    from cosmos_exp.data.driving_datasets import driving_clips

    d = cfg.dataset
    splits = _present_splits(cfg) if d.kind == "driving" else list(dict.fromkeys((d.train_split, d.eval_split)))
    report: Dict[str, Any] = {}
    for split in splits:
        clips, data_report = driving_clips(d, split, _action_space(cfg))
        report[split] = {"usable": len(clips), **data_report.to_dict()}
    write_json_atomic(run_dir / rundir.DATA_REPORT, report)
    return {"data_report": report}


def _prepare_tiny_model(cfg: Config) -> Dict[str, Any]:
    from cosmos_exp.models.tiny import build_tiny_model

    path = Path(cfg.model.path)
    stamp = _model_stamp(cfg)
    if _up_to_date(path, stamp):
        return {"model": str(path), "built": False}
    if path.exists() and not (path / STAMP).exists():
        raise ConfigError("model.path", f"{path} exists and was not built by cosmos-exp; refusing to overwrite it",
                          "choose another model.path or remove that directory yourself")
    # The stamp goes in with the weights: the model directory is complete (and ours) or absent.
    if cfg.task.kind == "trajectory":
        # The tiny model with the trajectory tokens added (history levels, delimiters, stage 1's future bins),
        # as a real Cosmos-Reason2 checkpoint gets them (models/trajectory_tokens.py).
        import tempfile

        from cosmos_exp.models.trajectory_tokens import prepare_backbone

        t = cfg.task.trajectory
        with tempfile.TemporaryDirectory(prefix="tiny_base_") as base:
            build_tiny_model(cfg.model.family, Path(base) / "model", cfg.model.tiny)
            prepare_backbone(Path(base) / "model", path, t.prompt, seed=int(cfg.seed), action_cfg=t.action_space)
        write_json_atomic(path / STAMP, stamp)  # last: an interrupted preparation is redone
        return {"model": str(path), "built": True, "trajectory_tokens": True}
    with atomic_directory(path) as tmp:
        build_tiny_model(cfg.model.family, tmp, cfg.model.tiny)
        write_json_atomic(tmp / STAMP, stamp)
    return {"model": str(path), "built": True}


def _scan_real_dataset(cfg: Config, run_dir: Path) -> Dict[str, Any]:
    from cosmos_exp.data.datasets import build_dataset

    report: Dict[str, Any] = {}
    for split in _present_splits(cfg):
        samples, data_report = build_dataset(cfg.dataset, split)
        report[split] = {"usable": len(samples), **data_report.to_dict()}
    write_json_atomic(run_dir / rundir.DATA_REPORT, report)
    return {"data_report": report}


def _present_splits(cfg: Config) -> List[str]:
    """The splits a real dataset has: preparing one must not need the other."""
    d = cfg.dataset
    return [s for s in dict.fromkeys((d.train_split, d.eval_split))
            if (Path(d.root) / s).is_dir() or (_converts_lingoqa(cfg) and s == d.eval_split)]


def _converts_lingoqa(cfg: Config) -> bool:
    return cfg.dataset.kind == "lingoqa" and bool(cfg.dataset.lingoqa_parquet)


def run(cfg: Config, run_dir: Path) -> Dict[str, Any]:
    result: Dict[str, Any] = {}
    if cfg.dataset.synthetic is not None:
        result.update(_prepare_synthetic(cfg))
    elif cfg.dataset.driving_synthetic is not None:
        result.update(_prepare_driving_synthetic(cfg))
    elif cfg.dataset.kind in DRIVING_KINDS:
        result.update(_scan_driving(cfg, run_dir))
    elif cfg.dataset.kind != "blend":
        if _converts_lingoqa(cfg):
            from cosmos_exp.data.lingoqa import convert

            d = cfg.dataset
            result["lingoqa"] = convert(Path(d.lingoqa_parquet), Path(d.root), d.eval_split, d.lingoqa_frames_dir)
        result.update(_scan_real_dataset(cfg, run_dir))
    if cfg.model.tiny is not None:
        result.update(_prepare_tiny_model(cfg))
    if cfg.clip_cache.fill:  # last: it needs the data and the model's processor
        from cosmos_exp.data.cache_fill import fill_cache

        result["clip_cache"] = fill_cache(cfg, _fill_splits(cfg))
    return result
