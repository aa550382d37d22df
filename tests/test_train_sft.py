"""stage=sft backend=deepspeed end to end through the real CLI, on synthetic clips and tiny models.

Fast (default): one process, ZeRO-0: loss falls, checkpoints are complete HF directories that load in
a fresh process with the Auto classes and our processor and generate; a run SIGKILLed after a
checkpoint and resumed ends with the same weights as an uninterrupted run; SIGTERM checkpoints.
Slow: two processes over gloo with ZeRO-2 and ZeRO-3.
"""

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest

from conftest import CONF_DIR, run_cli, wait_for
from cosmos_exp import rundir

# The demo's settings on its caption data alone (its blend adds multiple choice: launchers/demo.sh runs that).
COMMON = ["stage=sft", "experiment=demo", "dataset=synthetic_av", "train.eval_every=3", "train.eval_batches=1",
          "train.warmup_ratio=null", "train.warmup_steps=1", "dataset.num_workers=1"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Dict[str, Path]:
    """Synthetic dataset + tiny Qwen3-VL / Qwen2.5-VL at the paths the presets expect under paths.root."""
    from hydra import compose, initialize_config_dir

    from cosmos_exp.config import register_configs
    from cosmos_exp.data.synthetic import generate_synthetic_av
    from cosmos_exp.models.tiny import build_tiny_model

    root = tmp_path_factory.mktemp("sft")
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["model=tiny_qwen3_vl", f"paths.root={root}/outputs",
                                           "dataset.synthetic.num_train=8", "dataset.synthetic.num_eval=2"])
    generate_synthetic_av(cfg.dataset)
    build_tiny_model("qwen3_vl", cfg.model.path, cfg.model.tiny)
    build_tiny_model("qwen2_5_vl", Path(cfg.paths.models_dir) / "tiny_qwen2_5_vl", cfg.model.tiny)
    return {"root": root, "data": Path(cfg.dataset.root)}


def _args(inputs, run_dir: Path, *extra: str) -> List[str]:
    return [*COMMON, f"paths.root={inputs['root']}/outputs", f"hydra.run.dir={run_dir}", *extra]


def _sft(inputs, run_dir: Path, *extra: str, timeout: float = 600) -> subprocess.CompletedProcess:
    proc = run_cli(_args(inputs, run_dir, *extra), cwd=inputs["root"], timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc


def _metrics(run_dir: Path) -> List[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _weights(step_dir: Path) -> Dict[str, "object"]:
    from safetensors.torch import load_file

    return load_file(str(step_dir / "model.safetensors"))


def _assert_same_weights(a: Path, b: Path, atol: float = 1e-6) -> None:
    import torch

    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    worst = max(float((wa[k].float() - wb[k].float()).abs().max()) for k in wa)
    assert worst <= atol, f"max weight difference {worst}"
    src = _weights_source(a)
    assert any(not torch.equal(wa[k], src[k]) for k in wa)  # and training did move them


def _weights_source(step_dir: Path):
    info = json.loads((step_dir / "complete.json").read_text())
    return _weights(Path(info["source_model"]))


def _assert_loss_falls(run_dir: Path) -> None:
    losses = [m["loss"] for m in _metrics(run_dir)]
    assert len(losses) >= 4
    assert sum(losses[-2:]) / 2 < sum(losses[:2]) / 2 - 0.05, losses


LOAD_AND_GENERATE = r"""
import json, sys, torch
from transformers import AutoModelForImageTextToText
from cosmos_exp.config.data import VisionConfig
from cosmos_exp.data.conversation import build_conversation
from cosmos_exp.data.processor import Processor
ckpt, video = sys.argv[1], sys.argv[2]
model = AutoModelForImageTextToText.from_pretrained(ckpt, dtype=torch.float32).eval()
proc = Processor.from_pretrained(ckpt)
vision = VisionConfig(nframes=4, min_frames=2, max_pixels=16384)
conv = build_conversation("You are a driving assistant.", "Describe the scene as JSON.", video, vision, None)
enc = proc.encode(conv, vision, add_generation_prompt=True)
batch = proc.collate([enc], padding_side="left")
out = model.generate(**batch, max_new_tokens=6, do_sample=False)
new = out[0, batch["input_ids"].shape[1]:]
print(json.dumps({"cls": type(model).__name__, "family": proc.family, "n_new": int(new.numel()),
                  "video_tokens": int((batch["mm_token_type_ids"] == 2).sum()),
                  "text": proc.tokenizer.decode(new)}))
"""


def _load_and_generate(step_dir: Path, video: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", LOAD_AND_GENERATE, str(step_dir), str(video)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_sft_trains_checkpoints_and_checkpoint_generates(inputs, tmp_path):
    run_dir = tmp_path / "run"
    _sft(inputs, run_dir, "model=tiny_qwen3_vl", "train.max_steps=6", "train.save_every=2",
         "train.keep_last_exports=2", "train.keep_last_states=1", f"clip_cache.dir={tmp_path}/clips")
    _assert_loss_falls(run_dir)
    # 6 steps x 4 samples = 3 epochs of the 8 clips: the loader worker decodes them once, then reads the cache
    log = (run_dir / "log.txt").read_text()
    assert re.search(r"clip cache, epoch 0 in process \d+: 0 clips read from the cache, 8 decoded", log), log[-3000:]
    assert re.search(r"clip cache, epoch 1 in process \d+: 8 clips read from the cache, 0 decoded", log), log[-3000:]
    assert len(list((tmp_path / "clips" / "entries").rglob("*.clip"))) == 10  # 8 training + 2 held-out clips
    # run.json's data fingerprints: one digest per split over the clips' content hashes, the list beside it
    data = json.loads((run_dir / "run.json").read_text())["data"]
    listed = json.loads((run_dir / data["train"]["list"]).read_text())
    assert {k: v["clips"] for k, v in data.items()} == {"train": 8, "eval": 2}
    train_clips = sorted((inputs["data"] / "train" / "videos").iterdir())
    assert listed["train"]["clips"] == {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in train_clips}
    assert data["train"]["digest"] == hashlib.sha256(
        "\n".join(sorted(listed["train"]["clips"].values())).encode()).hexdigest()
    metrics = _metrics(run_dir)
    for key in ("lr", "grad_norm", "tokens_per_s", "samples_per_s", "step_time_s", "data_wait_s", "memory_gb"):
        assert metrics[-1][key] == metrics[-1][key], key  # present and not NaN
    assert [m["step"] for m in metrics if "eval_loss" in m] == [3, 6]
    ckpts = run_dir / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["latest", "step_4", "step_6"]  # keep_last_exports=2
    assert _states(run_dir) == {"step_4": False, "step_6": True}  # keep_last_states=1
    assert (ckpts / "latest").read_text().strip() == "step_6"
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "succeeded" and run["result"]["steps"] == 6
    video = next((inputs["data"] / "eval" / "videos").iterdir())
    out = _load_and_generate(ckpts / "step_4", video)  # an export whose training state was pruned
    assert out["cls"] == "Qwen3VLForConditionalGeneration" and out["family"] == "qwen3_vl"
    assert out["video_tokens"] > 0 and 1 <= out["n_new"] <= 6


def _states(run_dir: Path) -> Dict[str, bool]:
    """step name -> whether the checkpoint still holds its training state (DeepSpeed's ds/ and the RNG/data files)."""
    out = {}
    for step in rundir.list_complete(run_dir):
        has = (step / "ds").is_dir() and bool(list(step.glob("train_state_rank*.pt")))
        assert has == json.loads((step / "complete.json").read_text())["training_state"], step
        assert (step / "model.safetensors").is_file() and (step / "config.json").is_file(), step  # the export
        out[step.name] = has
    return out


def test_retention_keeps_every_export_and_resumes_from_the_newest_state(inputs, tmp_path):
    import torch

    run_dir = tmp_path / "run"
    extra = ("model=tiny_qwen3_vl", "train.save_every=1", "train.eval_every=null", "train.keep_last_states=1")
    _sft(inputs, run_dir, *extra, "train.max_steps=3")
    assert _states(run_dir) == {"step_1": False, "step_2": False, "step_3": True}
    sizes = {p.name: (p / "model.safetensors").stat().st_size for p in rundir.list_complete(run_dir)}
    assert len(set(sizes.values())) == 1  # whole exports, not stubs
    first = _weights(run_dir / "checkpoints" / "step_1")

    _sft(inputs, run_dir, *extra, "train.max_steps=5")  # resume=auto: the newest state, step 3
    assert json.loads((run_dir / "train_result.json").read_text())["start_step"] == 3
    assert _states(run_dir) == {"step_1": False, "step_2": False, "step_3": False, "step_4": False, "step_5": True}
    again = _weights(run_dir / "checkpoints" / "step_1")
    assert all(torch.equal(first[k], again[k]) for k in first)  # the old export untouched by the resumed run
    steps = [m["step"] for m in _metrics(run_dir)]
    assert steps == [1, 2, 3, 4, 5]


def test_sft_qwen2_5_vl_runs(inputs, tmp_path):
    run_dir = tmp_path / "run"
    _sft(inputs, run_dir, "model=tiny_qwen2_5_vl", "train.max_steps=2", "train.save_every=2",
         "train.eval_every=null", "train.freeze=[model.visual.*]", "train.lr_schedule=linear")
    step = run_dir / "checkpoints" / "step_2"
    w, src = _weights(step), _weights_source(step)
    import torch

    visual = [k for k in w if ".visual." in f".{k}"]
    assert visual and all(torch.equal(w[k], src[k]) for k in visual)  # frozen tower unchanged
    assert any(not torch.equal(w[k], src[k]) for k in w if k not in visual)


def test_resume_after_sigkill_matches_uninterrupted_run(inputs, tmp_path):
    extra = ("model=tiny_qwen3_vl", "train.max_steps=6", "train.save_every=2")
    straight = tmp_path / "straight"
    _sft(inputs, straight, *extra)
    extra += ("train.loggers=[console,wandb,tensorboard]",)  # WANDB_MODE=offline (conftest)

    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "cosmos_exp.run", *_args(inputs, killed, *extra)],
                            cwd=inputs["root"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        wait_for(killed / "checkpoints" / "step_2", proc)
        os.killpg(proc.pid, signal.SIGKILL)  # the trainer and its loader worker, no chance to clean up
    finally:
        proc.wait()
    assert not (killed / "checkpoints" / "step_6").exists(), "the run finished before it could be killed"
    wandb_id = (killed / "wandb_run_id.txt").read_text().strip()

    _sft(inputs, killed, *extra)  # resume=auto: same run directory
    assert (killed / "wandb_run_id.txt").read_text().strip() == wandb_id  # the same wandb run continues
    assert len(list((killed / "wandb").glob(f"offline-run-*-{wandb_id}"))) == 2
    assert list((killed / "tensorboard").glob("events.out.tfevents.*"))
    result = json.loads((killed / "train_result.json").read_text())
    assert result["start_step"] >= 2 and result["steps"] == 6
    run = json.loads((killed / "run.json").read_text())  # the killed attempt never finished its record
    assert run["status"] == "succeeded" and [a["status"] for a in run["attempts"]] == ["running"]
    _assert_same_weights(straight / "checkpoints" / "step_6", killed / "checkpoints" / "step_6")
    steps = [m["step"] for m in _metrics(killed)]
    assert steps == sorted(steps) and steps[-1] == 6 and len(steps) == len(set(steps))


def test_sigterm_saves_a_checkpoint_and_stops(inputs, tmp_path):
    """SIGTERM to every process of the run, as SLURM sends it (its data-loader worker too: torch's workers die of
    one, and the trainer then failed on its next batch instead of saving)."""
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "cosmos_exp.run",
                             *_args(inputs, run_dir, "model=tiny_qwen3_vl", "train.max_steps=200",
                                    "train.save_every=100", "train.eval_every=null")],
                            cwd=inputs["root"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    wait_for(run_dir / "metrics.jsonl", proc)
    os.killpg(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode != 0
    done = [p.name for p in (run_dir / "checkpoints").iterdir() if p.name.startswith("step_")]
    assert len(done) == 1 and done[0] != "step_200", done
    assert (run_dir / "checkpoints" / done[0] / "complete.json").is_file()
    assert json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"
    assert "resume with train.resume=auto" in err


def test_dry_run_plan_lists_items_processes_and_checkpoints(inputs, tmp_path):
    proc = run_cli([*COMMON, f"paths.root={inputs['root']}/outputs", "model=tiny_qwen3_vl", "parallelism=zero2",
                    "train.micro_batch_size=1", "train.global_batch_size=2", "train.max_steps=5",
                    "train.save_every=2", "train.keep_last_exports=2", "train.keep_last_states=1", "dry_run=true"],
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "train items (train): " in out and "(8 found)" in out and "(2 found)" in out
    assert out.count("cosmos_exp.worker <run_dir> sft") == 2
    assert "checkpoints/step_4/ (export only)" in out and "checkpoints/step_5/\n" in out
    assert "checkpoints/step_2/" not in out
    assert ("Hugging Face exports kept: the newest 2 (train.keep_last_exports); training states (optimizer, "
            "scheduler, RNG, data position) kept: the newest 1 (train.keep_last_states)") in out
    assert "2 samples per optimizer step = 2 data-parallel rank(s) x 1 per micro-batch x 1 accumulation step(s)" in out
    assert "2 process(es), ZeRO-2, 5 optimiser steps" in out
    assert not (tmp_path / "outputs").exists()


def test_plan_imports_no_torch(inputs):
    code = ("import sys\n"
            "from hydra import compose, initialize_config_dir\n"
            "from cosmos_exp.config import register_configs\n"
            "from cosmos_exp.config.validate import typed\n"
            "from cosmos_exp.stages import sft as sft_stage\n"
            "register_configs()\n"
            f"with initialize_config_dir(config_dir='{CONF_DIR}', version_base='1.3'):\n"
            f"    cfg = typed(compose('config', overrides=['stage=sft', 'paths.root={inputs['root']}/outputs']))\n"
            "p = sft_stage.plan(cfg)\n"
            "print(p.render())\n"
            "assert 'torch' not in sys.modules and 'deepspeed' not in sys.modules, 'heavy import in plan'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "plan for stage 'sft'" in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("parallelism", ["zero2", "zero3"])
def test_two_processes_over_gloo(inputs, tmp_path, parallelism):
    run_dir = tmp_path / "run"
    port = "29631" if parallelism == "zero2" else "29641"
    _sft(inputs, run_dir, "model=tiny_qwen3_vl", f"parallelism={parallelism}", f"parallelism.master_port={port}",
         "train.micro_batch_size=1", "train.global_batch_size=2", "train.max_steps=6", "train.save_every=3",
         "train.lr=2e-3")
    _assert_loss_falls(run_dir)
    step = run_dir / "checkpoints" / "step_6"
    info = json.loads((step / "complete.json").read_text())
    assert info["world_size"] == 2 and info["zero_stage"] == (2 if parallelism == "zero2" else 3)
    assert sorted(p.name for p in step.glob("train_state_rank*.pt")) == ["train_state_rank0.pt", "train_state_rank1.pt"]
    w, src = _weights(step), _weights_source(step)
    assert w.keys() == src.keys() and all(w[k].shape == src[k].shape for k in w)  # ZeRO-3: full weights gathered
    video = next((inputs["data"] / "eval" / "videos").iterdir())
    assert _load_and_generate(step, video)["n_new"] >= 1


@pytest.mark.slow
def test_two_process_zero2_resume_after_sigkill_matches(inputs, tmp_path):
    extra = ("model=tiny_qwen3_vl", "parallelism=zero2", "parallelism.master_port=29651", "train.micro_batch_size=1",
             "train.global_batch_size=2", "train.max_steps=6", "train.save_every=2", "train.eval_every=null")
    straight = tmp_path / "straight"
    _sft(inputs, straight, *extra)
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "cosmos_exp.run", *_args(inputs, killed, *extra)],
                            cwd=inputs["root"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        wait_for(killed / "checkpoints" / "step_2", proc)
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher; its ranks die with it (runtime/processes.py)
    finally:
        proc.wait()
    assert not (killed / "checkpoints" / "step_6").exists(), "the run finished before it could be killed"
    _sft(inputs, killed, *extra)
    assert json.loads((killed / "train_result.json").read_text())["start_step"] >= 2
    _assert_same_weights(straight / "checkpoints" / "step_6", killed / "checkpoints" / "step_6")


@pytest.mark.slow
def test_inside_torchrun_ranks_share_one_run_directory(inputs, tmp_path):
    """torchrun starts cosmos-exp in every rank: one launch directory, rank 0 keeps the record."""
    outputs = tmp_path / "outputs"
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
            "-m", "cosmos_exp.run", *COMMON, f"paths.root={outputs}", f"paths.data_dir={inputs['root']}/outputs/data",
            f"paths.models_dir={inputs['root']}/outputs/models", "model=tiny_qwen3_vl", "parallelism=zero2",
            "train.micro_batch_size=1", "train.global_batch_size=2", "train.max_steps=2", "train.save_every=2"]
    proc = subprocess.run(argv, cwd=inputs["root"], capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    (run_dir,) = [p for p in outputs.glob("runs/*/*") if p.is_dir()]
    assert run_dir.name.startswith("launch-") and run_dir.name.endswith("_sft_demo")
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "succeeded" and info["torchrun"]["WORLD_SIZE"] == "2" and info["torchrun"]["RANK"] == "0"
    assert (run_dir / "log_rank1.txt").is_file() and (run_dir / "log.txt").is_file()
    assert json.loads((run_dir / "checkpoints" / "step_2" / "complete.json").read_text())["world_size"] == 2


@pytest.mark.slow
def test_two_runs_started_together_on_one_host_both_train(inputs, tmp_path):
    """Each lone run rendezvous on a port the OS hands it: with the configured port for both, the second to
    bind failed with EADDRINUSE (seen when two demos started at once)."""
    runs = [tmp_path / "one", tmp_path / "two"]
    procs = [subprocess.Popen([sys.executable, "-m", "cosmos_exp.run",
                               *_args(inputs, run, "model=tiny_qwen3_vl", "train.max_steps=2", "train.save_every=2")],
                              cwd=inputs["root"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for run in runs]
    for run, proc in zip(runs, procs):
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, out[-2000:] + err[-4000:]
        assert (run / "checkpoints" / "step_2" / "complete.json").is_file()


def test_multirun_sweep_jobs_in_one_process_stay_independent(inputs, tmp_path):
    """A local `-m` sweep runs its jobs one after another in one process: the second must not inherit the
    first job's rank variables or process group."""
    outputs = tmp_path / "outputs"
    proc = run_cli(["-m", *COMMON, f"paths.root={outputs}", f"paths.data_dir={inputs['root']}/outputs/data",
                    f"paths.models_dir={inputs['root']}/outputs/models", "model=tiny_qwen3_vl", "train.eval_every=null",
                    "train.max_steps=1", "train.save_every=1", "train.lr=1e-3,2e-3"], cwd=inputs["root"])
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "inside a launcher" not in proc.stdout
    jobs = sorted(p.parent for p in outputs.glob("runs/*/*_multirun_sft_demo/*/run.json"))
    assert [j.name for j in jobs] == ["0", "1"]
    assert [json.loads((j / "run.json").read_text())["overrides"][-1] for j in jobs] == ["train.lr=0.001", "train.lr=0.002"]
    for job in jobs:
        info = json.loads((job / "run.json").read_text())
        assert info["status"] == "succeeded" and "RANK" not in info["torchrun"]
        assert (job / "checkpoints" / "step_1" / "complete.json").is_file()


def test_no_secret_in_a_training_run_dir_with_wandb_and_tensorboard(inputs, tmp_path):
    secrets = {"WANDB_API_KEY": "wandbsecret" + "0123456789" * 3, "OPENAI_API_KEY": "sk-test-secret-42424242"}
    run_dir = tmp_path / "run"
    proc = run_cli(_args(inputs, run_dir, "model=tiny_qwen3_vl", "train.max_steps=2", "train.save_every=2",
                         "train.loggers=[console,wandb,tensorboard]"), cwd=inputs["root"],
                   env=dict(secrets, WANDB_MODE="offline"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (run_dir / "wandb").is_dir() and (run_dir / "tensorboard").is_dir()
    for f in run_dir.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            assert not any(v.encode() in data for v in secrets.values()), f"a secret leaked into {f}"


def test_answer_token_count_matches_the_models_loss(inputs):
    """The loop weighs micro-batches by their answer tokens: mean loss x count must be the summed token loss."""
    import torch
    import torch.nn.functional as F
    from omegaconf import OmegaConf

    from cosmos_exp.config.data import VisionConfig
    from cosmos_exp.data.datasets import build_dataset
    from cosmos_exp.data.processor import Processor
    from cosmos_exp.models.loading import load_model
    from cosmos_exp.train.data import answer_tokens as _answer_tokens

    model_dir = inputs["root"] / "outputs" / "models" / "tiny_qwen3_vl"
    vision = VisionConfig(nframes=4, min_frames=2, min_pixels=3136, max_pixels=16384)
    ds_cfg = OmegaConf.create({"name": "synthetic_av", "kind": "caption", "root": str(inputs["data"]),
                               "train_split": "train", "eval_split": "eval", "vision": vision})
    from cosmos_exp.config.data import DatasetConfig
    samples, _ = build_dataset(OmegaConf.merge(OmegaConf.structured(DatasetConfig), ds_cfg), "train")
    proc = Processor.from_pretrained(model_dir)
    batch = proc.collate([proc.encode(s.conversation, vision) for s in samples[:2]])
    model = load_model(model_dir)
    with torch.no_grad():
        out = model(**batch)
    logits, labels = out.logits[:, :-1].float(), batch["labels"][:, 1:]
    summed = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100, reduction="sum")
    n = _answer_tokens(batch)
    assert n == int((labels != -100).sum()) > 0
    assert torch.allclose(out.loss * n, summed, rtol=1e-4)
