"""stage=caption end to end on the tiny models and the synthetic dataset (made once by conftest's `prepared`)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest
from hydra import compose, initialize_config_dir

from conftest import CONF_DIR, run_cli
from cosmos_exp.config import ConfigError, register_configs
from cosmos_exp.config.model import TinyModelConfig
from cosmos_exp.config.validate import typed, validate
from cosmos_exp.stages import caption as caption_stage
from cosmos_exp.repro.record import resolved_yaml
from cosmos_exp.runtime.launcher import RanksFailed

@pytest.fixture(scope="session")
def prepared(tmp_path_factory) -> Dict[str, Path]:
    """Synthetic dataset + both tiny models, built with the data and models packages directly."""
    from cosmos_exp.data.synthetic import generate_synthetic_av
    from cosmos_exp.models.tiny import build_tiny_model

    root = tmp_path_factory.mktemp("infer")
    out = root / "outputs"
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"paths.root={out}"])
    generate_synthetic_av(cfg.dataset)
    env = {"root": root, "outputs": out, "data": Path(cfg.dataset.root)}
    for family in ("qwen2_5_vl", "qwen3_vl"):
        env[f"tiny_{family}"] = build_tiny_model(family, out / "models" / f"tiny_{family}", TinyModelConfig())
    return env


RECORD_KEYS = {"id", "task", "video", "raw_text", "parsed", "parse_status", "reference", "question",
               "prompt_hash", "generation", "checkpoint"}


def make_cfg(prepared, *overrides: str, model: str = "tiny_qwen2_5_vl"):
    register_configs()
    args = ["stage=caption", f"model={model}", f"paths.root={prepared['outputs']}",
            "generation.max_new_tokens=16", "generation.batch_size=3", *overrides]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = typed(compose("config", overrides=args))
    validate(cfg)
    return cfg


def captions(root: Path) -> Dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((root / "captions").glob("*.json"))
            if p.name != "index.json"}


def eval_ids(prepared) -> List[str]:
    return sorted(p.name.split(".")[0] for p in (prepared["data"] / "eval" / "metas").glob("*.label.json"))


def index(root: Path) -> dict:
    return json.loads((root / "captions" / "index.json").read_text())


def test_every_eval_item_once_deterministic(prepared, tmp_path):
    cfg = make_cfg(prepared)
    caption_stage.plan(cfg)
    result = caption_stage.run(cfg, tmp_path / "a")
    caption_stage.run(cfg, tmp_path / "b")
    a, b = captions(tmp_path / "a"), captions(tmp_path / "b")
    assert sorted(a) == eval_ids(prepared) and result["done"] == len(a) == 8
    for item_id, record in a.items():
        assert RECORD_KEYS <= set(record)
        assert record["id"] == item_id and record["task"] == "caption"
        assert record["checkpoint"] == str(prepared["tiny_qwen2_5_vl"].resolve())
        assert record["model_type"] == "qwen2_5_vl"
        assert record["parse_status"] in ("ok", "no_json", "invalid_json")
        assert record["reference"]["weather"]  # the label's caption dict
        assert record["generation"]["max_new_tokens"] == 16 and record["generation"]["do_sample"] is False
        assert Path(record["video"]).is_file()
        assert (tmp_path / "a" / "captions_raw" / f"{item_id}.txt").read_text() == record["raw_text"]
    assert {r["raw_text"] for r in a.values()} != {""}
    assert [r["raw_text"] for r in a.values()] == [r["raw_text"] for r in b.values()]
    assert len({r["prompt_hash"] for r in a.values()}) == 1  # same prompt, different videos
    idx = index(tmp_path / "a")
    assert idx["checkpoint"] == str(prepared["tiny_qwen2_5_vl"].resolve())
    assert idx["counts"]["done"] == 8 and idx["counts"]["generated_this_run"] == 8
    assert idx["throughput"]["videos_per_s"] > 0
    assert idx["dataset"]["split"] == "eval"


@pytest.mark.parametrize("model", ["tiny_qwen2_5_vl", "tiny_qwen3_vl"])
def test_batched_equals_one_by_one(prepared, tmp_path, model):
    # left padding must not change a greedy answer (prompts of different lengths via the mcq set)
    common = (f"model.path={prepared[model]}", "dataset=synthetic_av_mcq", "generation.max_items=6")
    caption_stage.run(make_cfg(prepared, "generation.batch_size=6", *common, model=model), tmp_path / "batched")
    caption_stage.run(make_cfg(prepared, "generation.batch_size=1", *common, model=model), tmp_path / "single")
    a, b = captions(tmp_path / "batched"), captions(tmp_path / "single")
    assert {k: v["raw_text"] for k, v in a.items()} == {k: v["raw_text"] for k, v in b.items()}


def test_sampling_is_seeded(prepared, tmp_path):
    sample = ["generation.do_sample=true", "generation.temperature=1.0", "generation.max_items=4"]
    for name, seed in (("s1", 1), ("s1b", 1), ("s2", 2)):
        caption_stage.run(make_cfg(prepared, *sample, f"generation.seed={seed}"), tmp_path / name)
    texts = {n: [r["raw_text"] for r in captions(tmp_path / n).values()] for n in ("s1", "s1b", "s2")}
    assert texts["s1"] == texts["s1b"]
    assert texts["s1"] != texts["s2"]
    record = next(iter(captions(tmp_path / "s1").values()))
    assert record["generation"]["temperature"] == 1.0 and record["generation"]["seed"] == 1


_KILLER = """
import os, sys
from pathlib import Path
import cosmos_exp.repro.atomic as atomic
real_replace, writes = os.replace, []
def dying_replace(src, dst):
    name = Path(dst).name
    if Path(dst).parent.name == "captions" and not name.startswith(("index", ".")):
        writes.append(name)
        if len(writes) == int(os.environ["KILL_AT"]):
            os._exit(137)  # killed between writing the temp file and renaming it
    return real_replace(src, dst)
atomic.os = type(os)("os_shim")
atomic.os.__dict__.update(os.__dict__)
atomic.os.replace = dying_replace
from cosmos_exp.run import main
sys.argv = ["cosmos-exp"] + sys.argv[1:]
main()
"""


def test_killed_run_resumes_only_the_missing_items(prepared, tmp_path):
    out = tmp_path / "shared_out"
    args = ["stage=caption", "model=tiny_qwen2_5_vl", f"paths.root={prepared['outputs']}",
            "generation.max_new_tokens=16", "generation.batch_size=2", f"generation.output_dir={out}"]
    script = tmp_path / "killer.py"
    script.write_text(_KILLER)
    proc = subprocess.run([sys.executable, str(script), *args], cwd=tmp_path, capture_output=True, text=True,
                          env=dict(os.environ, KILL_AT="4"), timeout=600)
    assert proc.returncode == 137, proc.stderr[-3000:]
    before = captions(out)
    assert len(before) == 3  # the 4th died before its rename
    leftovers = list((out / "captions").glob(".*.tmp"))
    assert len(leftovers) == 1  # the half-done temp file, never read as an output
    mtimes = {i: (out / "captions" / f"{i}.json").stat().st_mtime_ns for i in before}

    proc = run_cli(args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = captions(out)
    assert sorted(after) == eval_ids(prepared)
    assert {i: (out / "captions" / f"{i}.json").stat().st_mtime_ns for i in before} == mtimes  # untouched
    counts = index(out)["counts"]
    assert counts["generated_this_run"] == 5 and counts["skipped_existing"] == 3 and counts["done"] == 8
    assert not list((out / "captions").glob(".*.tmp"))

    # and the same outputs as an uninterrupted run
    caption_stage.run(make_cfg(prepared, "generation.batch_size=2"), tmp_path / "clean")
    assert {k: v["raw_text"] for k, v in captions(tmp_path / "clean").items()} == \
        {k: v["raw_text"] for k, v in after.items()}

    proc = run_cli(args + ["generation.force=true"], cwd=tmp_path)
    assert proc.returncode == 0 and index(out)["counts"]["generated_this_run"] == 8


def with_config(cfg, run_dir: Path) -> Path:
    """A run directory as cosmos-exp leaves it before the stage runs: its resolved.yaml, which started ranks read."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "resolved.yaml").write_text(resolved_yaml(cfg))
    return run_dir


@pytest.mark.slow
def test_two_ranks_cover_every_item_once(prepared, tmp_path):
    cfg = make_cfg(prepared, "parallelism.nproc_per_node=2")
    result = caption_stage.run(cfg, with_config(cfg, tmp_path))
    records = captions(tmp_path)
    ids = eval_ids(prepared)
    assert sorted(records) == ids and result["done"] == 8
    for position, item_id in enumerate(ids):  # dealt by position in the sorted list
        assert records[item_id]["shard"] == {"rank": position % 2, "world_size": 2}
    idx = index(tmp_path)
    assert sorted((s["rank"], s["assigned"], s["generated"], s["status"]) for s in idx["shards"]) == \
        [(0, 4, 4, "ok"), (1, 4, 4, "ok")]
    assert (tmp_path / "logs" / "caption_rank1.log").is_file()
    # the ranks read the run directory's resolved.yaml: the same model and settings as the stage's config
    assert idx["checkpoint"] == str(Path(cfg.model.path).resolve())
    assert idx["generation"]["max_new_tokens"] == 16 and idx["generation"]["batch_size"] == 3
    assert not (tmp_path / "caption_worker.yaml").exists()


@pytest.mark.slow
def test_a_failing_shard_fails_the_stage_with_its_error(prepared, tmp_path):
    # strict + a prompt longer than the model accepts: every shard fails on its first item
    cfg = make_cfg(prepared, "parallelism.nproc_per_node=2", "dataset.strict=true", "model.model_max_length=24")
    with pytest.raises(RanksFailed) as info:
        caption_stage.run(cfg, with_config(cfg, tmp_path))
    message = str(info.value)
    assert "rank 0 exited with status 1" in message and "model_max_length=24" in message


def test_routing_by_model_type_not_by_path_name(prepared, tmp_path):
    # a Qwen3-VL checkpoint under a Qwen2.5 name, and the reverse
    for family, misleading in (("qwen3_vl", "Qwen2.5-VL-7B-Instruct"), ("qwen2_5_vl", "Qwen3-VL-8B")):
        ckpt = tmp_path / misleading
        shutil.copytree(prepared[f"tiny_{family}"], ckpt)
        cfg = make_cfg(prepared, f"model.path={ckpt}", "generation.max_items=2", model=f"tiny_{family}")
        caption_stage.run(cfg, tmp_path / family)
        records = captions(tmp_path / family)
        assert len(records) == 2
        for record in records.values():
            assert record["model_type"] == family and record["generation"]["family"] == family
            assert record["checkpoint"] == str(ckpt.resolve())


def test_mcq_and_lingoqa_use_the_same_machinery(prepared, tmp_path):
    for dataset, reference_key in (("synthetic_av_mcq", "answer"), ("synthetic_av_lingoqa", "answers")):
        cfg = make_cfg(prepared, f"dataset={dataset}", "generation.max_items=5")
        caption_stage.run(cfg, tmp_path / dataset)
        records = captions(tmp_path / dataset)
        assert len(records) == 5
        task = dataset.rsplit("_", 1)[1]
        for record in records.values():
            assert record["task"] == task and record["parse_status"] == "not_applicable"
            assert record["parsed"] is None and reference_key in record["reference"]
            assert record["question"] and record["meta"]["question"] in record["question"]


def test_bad_items_are_skipped_and_reported(prepared, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(prepared["data"] / "eval", data / "eval")
    victim = sorted((data / "eval" / "videos").glob("*.mp4"))[2]
    victim.write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video" * 10)
    cfg = make_cfg(prepared, f"dataset.root={data}")
    result = caption_stage.run(cfg, tmp_path / "run")
    assert result["done"] == 7
    idx = index(tmp_path / "run")
    assert any(str(victim) in f for f in idx["dataset_skipped"])

    # items that pass the data checks but fail to encode: counted as failed with the reason, run goes on
    cfg = make_cfg(prepared, "model.model_max_length=24", "generation.max_items=2")
    result = caption_stage.run(cfg, tmp_path / "too_long")
    idx = index(tmp_path / "too_long")
    assert result["done"] == 0 and idx["counts"]["failed"] == 2
    assert all("model_max_length=24" in reason and ".mp4" in reason for reason in idx["failed"].values())


@pytest.mark.parametrize("damage,message", [
    ("config", "unreadable"),
    ("processor", "no processor files"),
    ("tokenizer", "no tokenizer files"),
])
def test_bad_checkpoint_is_refused_before_any_work(prepared, tmp_path, damage, message):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(prepared["tiny_qwen2_5_vl"], ckpt)
    if damage == "config":
        (ckpt / "config.json").write_text('{"model_type": "qwen2_5_vl", ')
    elif damage == "processor":
        for name in ("preprocessor_config.json", "video_preprocessor_config.json"):
            (ckpt / name).unlink(missing_ok=True)
    else:
        for name in ("tokenizer.json", "vocab.json"):
            (ckpt / name).unlink(missing_ok=True)
    if damage != "config":  # the entrypoint's own check reads config.json first; ours says the rest
        with pytest.raises(ConfigError, match=message) as info:
            caption_stage.plan(make_cfg(prepared, f"model.path={ckpt}"))
        assert info.value.key == "model.path"
    proc = run_cli(["stage=caption", f"paths.root={prepared['outputs']}", f"model.path={ckpt}"], cwd=tmp_path)
    assert proc.returncode == 2
    assert "model.path" in proc.stderr and str(ckpt) in proc.stderr


def test_dry_run_lists_items_checkpoint_and_settings(prepared, tmp_path):
    proc = run_cli(["stage=caption", f"paths.root={prepared['outputs']}", "dry_run=true",
                    "generation.batch_size=5"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "(8 found)" in proc.stdout
    assert str(prepared["tiny_qwen2_5_vl"].resolve()) in proc.stdout and "model_type=qwen2_5_vl" in proc.stdout
    assert '"batch_size": 5' in proc.stdout
    assert not (tmp_path / "outputs").exists() and not (prepared["outputs"] / "captions").exists()


def test_vllm_engine_without_vllm_is_a_config_error(prepared):
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    with pytest.raises(ConfigError, match="vllm is not installed") as info:
        caption_stage.plan(make_cfg(prepared, "generation.engine=vllm"))
    assert info.value.key == "generation.engine"


@pytest.mark.slow
def test_slurm_array_tasks_through_the_cli_share_one_output_dir(prepared, tmp_path):
    """Two array tasks of one job, started side by side as SLURM would, each its own cosmos-exp process."""
    out = tmp_path / "shared"
    args = ["stage=caption", f"paths.root={prepared['outputs']}", "generation.max_new_tokens=8",
            f"generation.output_dir={out}"]
    procs = []
    for task in (1, 2):  # --array=1-2
        env = dict(os.environ, SLURM_ARRAY_TASK_ID=str(task), SLURM_ARRAY_TASK_COUNT="2", SLURM_ARRAY_TASK_MIN="1")
        procs.append(subprocess.Popen([sys.executable, "-m", "cosmos_exp.run", *args], cwd=tmp_path, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
    records = captions(out)
    assert sorted(records) == eval_ids(prepared)
    assert sorted(r["shard"]["rank"] for r in records.values()) == [0, 0, 0, 0, 1, 1, 1, 1]
    idx = index(out)  # whichever task finished last merged both reports
    assert idx["counts"]["done"] == 8 and idx["counts"]["generated_this_run"] == 8
    assert sorted(s["source"] for s in idx["shards"]) == ["slurm_array", "slurm_array"]


def test_split_choice(prepared, tmp_path):
    caption_stage.run(make_cfg(prepared, "generation.split=train", "generation.max_items=2"), tmp_path)
    assert sorted(captions(tmp_path)) == ["synth_train_0000", "synth_train_0001"]
    assert index(tmp_path)["dataset"]["split"] == "train"
    with pytest.raises(ConfigError, match="no items in split 'test'") as info:
        caption_stage.plan(make_cfg(prepared, "generation.split=test"))
    assert info.value.key == "generation.split"


def test_resuming_with_other_settings_is_refused(prepared, tmp_path):
    out = f"generation.output_dir={tmp_path}"
    caption_stage.run(make_cfg(prepared, out, "generation.max_items=2"), tmp_path / "run1")
    caption_stage.plan(make_cfg(prepared, out, "generation.batch_size=1"))  # batch size may change
    with pytest.raises(ConfigError, match="other generation") as info:
        caption_stage.plan(make_cfg(prepared, out, "generation.max_new_tokens=17"))
    assert info.value.key == "generation.output_dir"
    other = make_cfg(prepared, out, f"model.path={prepared['tiny_qwen3_vl']}", model="tiny_qwen3_vl")
    with pytest.raises(ConfigError, match="other checkpoint"):
        caption_stage.run(other, tmp_path / "run2")
    caption_stage.plan(make_cfg(prepared, out, "generation.max_new_tokens=17", "generation.force=true"))
