"""stage=prepare: make what the chosen dataset and model need before training or inference.

- dataset.synthetic set: generate the synthetic driving dataset at dataset.root (skipped when a stamp
  shows it was generated with the same settings);
- model.tiny set: build the random-initialised test model at model.path (same stamp rule);
- otherwise: scan the real dataset's splits and report every bad item (data_report.json).
"""

import json
from pathlib import Path
from typing import Any, Dict

from omegaconf import DictConfig, OmegaConf

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


def _dataset_stamp(cfg: DictConfig) -> Dict[str, Any]:
    d = cfg.dataset
    layout = {k: d[k] for k in ("train_split", "eval_split", "video_dir", "meta_dir", "camera_suffix",
                                "video_ext", "label_suffix")}
    return _stamp_of(d.synthetic, "synthetic_av", {"layout": layout})


def _model_stamp(cfg: DictConfig) -> Dict[str, Any]:
    return _stamp_of(cfg.model.tiny, "tiny_model", {"family": cfg.model.family})


def plan(cfg: DictConfig) -> Plan:
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
    elif d.kind != "blend":
        if not root.is_dir():
            raise ConfigError("dataset.root", f"directory {root} does not exist", "point it at your copy of the data")
        for split in (d.train_split, d.eval_split):
            p.add_input(f"{d.name} {split} items", str(root / split), count_items(d, split))
        p.outputs.append("data_report.json (bad items with file and reason)")
    if m.tiny is not None:
        path = Path(m.path)
        if _up_to_date(path, _model_stamp(cfg)):
            p.notes.append(f"tiny model at {path} is up to date: nothing to build")
        else:
            p.outputs.append(f"{path}/ (random-initialised {m.family} model + tokenizer + processor files)")
    if not p.outputs:
        p.notes.append("nothing to do")
    return p


def _prepare_synthetic(cfg: DictConfig) -> Dict[str, Any]:
    from cosmos_exp.data.synthetic import generate_synthetic_av

    root = Path(cfg.dataset.root)
    stamp = _dataset_stamp(cfg)
    if _up_to_date(root, stamp):
        return {"dataset": str(root), "generated": False}
    summary = generate_synthetic_av(cfg.dataset)
    write_json_atomic(root / STAMP, stamp)  # written last: an interrupted generation is redone
    return {"dataset": str(root), "generated": True, **summary}


def _prepare_tiny_model(cfg: DictConfig) -> Dict[str, Any]:
    from cosmos_exp.models.tiny import build_tiny_model

    path = Path(cfg.model.path)
    stamp = _model_stamp(cfg)
    if _up_to_date(path, stamp):
        return {"model": str(path), "built": False}
    if path.exists() and not (path / STAMP).exists():
        raise ConfigError("model.path", f"{path} exists and was not built by cosmos-exp; refusing to overwrite it",
                          "choose another model.path or remove that directory yourself")
    # The stamp goes in with the weights: the model directory is complete (and ours) or absent.
    with atomic_directory(path) as tmp:
        build_tiny_model(cfg.model.family, tmp, cfg.model.tiny)
        write_json_atomic(tmp / STAMP, stamp)
    return {"model": str(path), "built": True}


def _scan_real_dataset(cfg: DictConfig, run_dir: Path) -> Dict[str, Any]:
    from cosmos_exp.data.datasets import build_dataset

    report: Dict[str, Any] = {}
    for split in (cfg.dataset.train_split, cfg.dataset.eval_split):
        samples, data_report = build_dataset(cfg.dataset, split)
        report[split] = {"usable": len(samples), **data_report.to_dict()}
    write_json_atomic(run_dir / "data_report.json", report)
    return {"data_report": report}


def run(cfg: DictConfig, run_dir: Path) -> Dict[str, Any]:
    result: Dict[str, Any] = {}
    if cfg.dataset.synthetic is not None:
        result.update(_prepare_synthetic(cfg))
    elif cfg.dataset.kind != "blend":
        result.update(_scan_real_dataset(cfg, run_dir))
    if cfg.model.tiny is not None:
        result.update(_prepare_tiny_model(cfg))
    return result
