"""Driving datasets through the config: stage=prepare generates the synthetic rigs, scans a clip dataset into
data_report.json, and a split reads as clips of the rigs the config picks."""

import json
from pathlib import Path

import pytest

from cosmos_exp.config.trajectory import ActionSpaceConfig
from cosmos_exp.data.datasets import count_items
from cosmos_exp.data.driving_datasets import driving_clips, split_rigs

from conftest import run_cli

SMALL = ["dataset=driving_synthetic", "dataset.driving_synthetic.num_train=10", "dataset.driving_synthetic.num_eval=5"]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("driving")
    proc = run_cli(["stage=prepare", *SMALL, f"paths.root={root}/outputs"], cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"root": root, "data": root / "outputs" / "data" / "driving_synthetic"}


def _dataset_cfg(data: Path, **extra):
    from omegaconf import OmegaConf

    from cosmos_exp.config.data import DatasetConfig

    return OmegaConf.merge(OmegaConf.structured(DatasetConfig), {"name": "driving_synthetic", "kind": "driving",
                                                                 "root": str(data), **extra})


def test_prepare_generates_both_rigs_and_a_second_prepare_does_nothing(generated):
    data = generated["data"]
    for split, n in (("train", 10), ("eval", 5)):
        assert sorted(p.name for p in (data / split).iterdir() if p.is_dir()) == ["rig_a", "rig_b"]
        assert len(list((data / split / "rig_a").iterdir())) == n
    proc = run_cli(["stage=prepare", *SMALL, f"paths.root={generated['root']}/outputs", "dry_run=true"],
                   cwd=generated["root"])
    assert proc.returncode == 0 and "up to date: nothing to generate" in proc.stdout


def test_a_split_reads_the_rigs_the_config_picks(generated):
    d = _dataset_cfg(generated["data"])
    assert split_rigs(d, "eval") == ["rig_a", "rig_b"] and count_items(d, "eval") == 10
    clips, report = driving_clips(d, "eval", ActionSpaceConfig())
    assert report.used == 10 and not report.skipped
    assert [c.rig for c in clips] == ["rig_a"] * 5 + ["rig_b"] * 5
    a_only = _dataset_cfg(generated["data"], rigs=["rig_a"])
    clips_a, _ = driving_clips(a_only, "eval", ActionSpaceConfig())
    assert count_items(a_only, "eval") == 5 and {c.rig for c in clips_a} == {"rig_a"}
    capped = _dataset_cfg(generated["data"], max_items=2)  # a cap applies per rig: the pairs stay whole
    clips_capped, _ = driving_clips(capped, "eval", ActionSpaceConfig())
    assert count_items(capped, "eval") == 4 and [c.rig for c in clips_capped] == ["rig_a"] * 2 + ["rig_b"] * 2
    assert [c.scene_id for c in clips_capped[:2]] == [c.scene_id for c in clips_capped[2:]]
    # Paired scenes: the same ids on both rigs, the same future.
    by_rig = {(c.rig, c.scene_id): c for c in clips}
    for c in clips_a:
        assert (by_rig[("rig_b", c.scene_id)].future_xy == c.future_xy).all()


def test_prepare_scans_a_clip_dataset_and_reports_bad_clips(generated, tmp_path):
    import shutil

    data = tmp_path / "clips"
    shutil.copytree(generated["data"], data)
    victim = next((data / "train" / "rig_b").iterdir())
    (victim / "label.json").write_text("{not json")
    proc = run_cli(["stage=prepare", "dataset=driving_synthetic", "dataset.driving_synthetic=null",
                    f"dataset.root={data}", f"paths.root={tmp_path}/outputs"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(next((tmp_path / "outputs").glob("runs/*/*/data_report.json")).read_text())
    assert report["train"]["usable"] == 19 and report["eval"]["usable"] == 10
    assert report["train"]["skipped_items"][0]["file"].endswith(f"{victim.name}/label.json")


def test_driving_clips_are_not_captioned(generated, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    proc = run_cli(["stage=caption", "dataset=driving_synthetic", "model=tiny_qwen2_5_vl",
                    f"paths.root={generated['root']}/outputs", f"model.path={tmp_path}", "dry_run=true"],
                   cwd=generated["root"])
    assert proc.returncode == 2 and "dataset.kind" in proc.stderr
