"""One meaning of batch size: train.global_batch_size is samples per optimizer step over all data-parallel ranks
on both backends; cosmos-rl gets it per rank, sizes that do not divide are refused before any work, and every
sft plan says how many samples one optimizer step takes."""

import json
import tomllib
from pathlib import Path

import pytest

from cosmos_exp.config import ConfigError
from cosmos_exp.config.batch import batch_layout
from cosmos_exp.config.validate import check_train, validate
from cosmos_exp.train.cosmos_rl import render, toml_io
from cosmos_exp.train.ds_config import deepspeed_config

from _compose import compose_typed
from _data_fixtures import make_synthetic
from conftest import CONF_DIR, run_cli

PRESETS = sorted(p.stem for p in (CONF_DIR / "parallelism").glob("*.yaml"))
RUN_DIR = Path("/runs/r1")


def test_every_parallelism_preset_is_covered():
    assert set(PRESETS) >= {"single", "ddp", "zero2", "zero3"}


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("nproc,tp", [(None, 1), (8, 1), (8, 2)])
@pytest.mark.parametrize("accum", [1, 3])
def test_the_same_config_takes_the_same_samples_per_step_on_both_backends(preset, nproc, tp, accum):
    micro = 2
    extra = [f"parallelism={preset}", f"parallelism.tp_size={tp}", f"train.micro_batch_size={micro}"]
    if nproc is not None:
        extra.append(f"parallelism.nproc_per_node={nproc}")
    world = nproc or compose_typed(extra).parallelism.nproc_per_node
    if world % tp:
        pytest.skip("tensor parallelism needs the world size to divide")
    ours = compose_typed([*extra, "backend=deepspeed", f"train.global_batch_size={micro * world * accum}"])
    ds = deepspeed_config(ours.parallelism, ours.train, world, on_gpu=False)
    assert ds["train_batch_size"] == ds["train_micro_batch_size_per_gpu"] * world * ds["gradient_accumulation_steps"]
    assert (ds["train_batch_size"], ds["gradient_accumulation_steps"]) == (micro * world * accum, accum)

    dp = world // tp  # cosmos-rl: tensor-parallel ranks share their samples
    theirs = compose_typed([*extra, "backend=cosmos_rl", f"train.global_batch_size={micro * dp * accum}"])
    doc = tomllib.loads(toml_io.dumps(render.render(theirs, RUN_DIR)))
    par, train = doc["policy"]["parallelism"], doc["train"]
    per_rank, mini = train["train_batch_per_replica"], train["train_policy"]["mini_batch"]
    assert par["tp_size"] * par["dp_shard_size"] * par["dp_replicate_size"] == world
    assert per_rank * par["dp_shard_size"] * par["dp_replicate_size"] == theirs.train.global_batch_size
    assert (per_rank, mini, per_rank // mini) == (micro * accum, micro, accum)
    assert batch_layout(theirs).accumulation == batch_layout(ours).accumulation == accum


@pytest.mark.parametrize("backend,global_batch,multiple", [("deepspeed", 12, 16), ("cosmos_rl", 12, 16),
                                                          ("cosmos_rl", 24, 16), ("deepspeed", 0, 16)])
def test_a_size_that_does_not_divide_is_refused_naming_the_keys(backend, global_batch, multiple):
    cfg = compose_typed([f"backend={backend}", "stage=sft", "parallelism=ddp", "parallelism.nproc_per_node=8",
                         "train.micro_batch_size=2", f"train.global_batch_size={global_batch}"])
    with pytest.raises(ConfigError) as err:
        check_train(cfg)
    assert err.value.key == "train.global_batch_size"
    text = str(err.value)
    assert f"must be a multiple of {multiple}" in text and "train.micro_batch_size=2" in text
    assert "8 data-parallel rank(s) (parallelism.nnodes x nproc_per_node" in text


def test_tensor_parallel_ranks_do_not_count_as_data_parallel_on_cosmos_rl():
    common = ["stage=sft", "parallelism=ddp", "parallelism.nproc_per_node=8", "parallelism.tp_size=2",
              "train.micro_batch_size=2", "train.global_batch_size=8"]
    with pytest.raises(ConfigError, match=r"over 8 data-parallel rank\(s\)"):
        check_train(compose_typed(["backend=deepspeed", *common]))  # our loop: 8 ranks x 2 does not divide 8
    layout = batch_layout(compose_typed(["backend=cosmos_rl", *common]))
    assert (layout.dp_ranks, layout.per_rank, layout.accumulation) == (4, 2, 1)


@pytest.mark.parametrize("experiment,family,per_gpu,accumulation,epochs,lr", [
    ("reason2_sft_recipe", "qwen3_vl", 32, 8, 3, 2e-7),  # the Reason 2 recipe's TOML: 32 per GPU x 8 = 256
    ("reason1_avha_sft", "qwen2_5_vl", 16, 4, 20, 2e-6),  # avha_sft.toml: 16 per GPU x 8 = 128
])
def test_a_cookbook_recipe_takes_its_samples_per_step_on_either_backend(tmp_path, experiment, family, per_gpu,
                                                                         accumulation, epochs, lr):
    model, data = tmp_path / "model", tmp_path / "data"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": family}))
    for sub in ("cv_annotated", "human_annotated", "reason1_sft"):  # the Reason 2 blend's sources
        (data / sub).mkdir(parents=True)
    common = [f"experiment={experiment}", f"model.path={model}", f"dataset.root={data}"]
    published = compose_typed(common)
    assert published.backend.name == "cosmos_rl"  # the recipe's own backend
    validate(published)
    doc = tomllib.loads(toml_io.dumps(render.render(published, RUN_DIR)))
    par = doc["policy"]["parallelism"]
    assert (doc["train"]["train_batch_per_replica"], par["dp_shard_size"], par["tp_size"]) == (per_gpu, 8, 1)
    assert doc["train"]["train_policy"]["mini_batch"] == 4 and doc["train"]["compile"] is False
    assert (doc["train"]["epoch"], doc["train"]["optm_lr"]) == (epochs, lr)
    ours = compose_typed([*common, "backend=deepspeed"])
    validate(ours)
    ds = deepspeed_config(ours.parallelism, ours.train, 8, on_gpu=True)
    assert (ds["train_batch_size"], ds["train_micro_batch_size_per_gpu"], ds["gradient_accumulation_steps"]) == \
        (per_gpu * 8, 4, accumulation)


@pytest.fixture
def inputs(tmp_path):
    data = tmp_path / "data"
    make_synthetic(data, num_train=2, num_eval=1)
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    return ["experiment=demo", f"model.path={model}", f"dataset.root={data}", "parallelism=ddp",
            f"paths.root={tmp_path}/outputs"]


@pytest.mark.parametrize("backend", ["deepspeed", "cosmos_rl"])
def test_every_sft_plan_says_samples_per_optimizer_step(tmp_path, inputs, backend):
    proc = run_cli(["stage=sft", f"backend={backend}", *inputs, "train.global_batch_size=8", "dry_run=true"],
                   cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert ("8 samples per optimizer step = 2 data-parallel rank(s) x 2 per micro-batch x 2 accumulation step(s)"
            in proc.stdout)
    # The demo's blend takes one source per step on either backend: blocks of the global batch, read in order.
    assert "per-source batches: the training split laid out in blocks of 8 items of one blend source" in proc.stdout
    if backend == "cosmos_rl":
        assert "train_batch_per_replica 4 per rank x dp_shard 2 x dp_replicate 1, in mini-batches of 2" in proc.stdout
        assert "(dataloader_shuffle false: its per-rank samplers keep the blocks)" in proc.stdout


def test_a_size_that_does_not_divide_stops_the_cli_before_any_work(tmp_path, inputs):
    proc = run_cli(["stage=sft", "backend=cosmos_rl", *inputs, "train.global_batch_size=6"], cwd=tmp_path)
    assert proc.returncode == 2
    assert "config error at 'train.global_batch_size': 6 samples per optimizer step" in proc.stderr
    assert not list((tmp_path / "outputs").glob("runs/*/*"))  # no run directory was kept
