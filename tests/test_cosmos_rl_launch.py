"""stage=sft backend=cosmos_rl through the real CLI, up to the launch: the dry run, the checks before a
launch, the argv, failure and signal propagation, and checkpoint discovery. A fake `cosmos-rl` on PATH
records its argv and writes exports the way cosmos-rl lays them out (the real launch needs GPUs)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Dict, List

import pytest

from cosmos_exp import rundir as ckpt
from cosmos_exp.train.cosmos_rl.checkpoints import export_problem, sync_checkpoints
from cosmos_exp.train.cosmos_rl.environment import PYTHONPATH_DIR, package_link_dir, roles_env
from cosmos_exp.train.cosmos_rl.launch import ENTRY_SCRIPT
from cosmos_exp.train.cosmos_rl.render import output_dir

from _compose import compose_typed
from _data_fixtures import make_synthetic
from _processes import live
from conftest import CONF_DIR, run_cli

FAKE_COSMOS_RL = '''#!{python}
import json, os, signal, sys, time, tomllib
from pathlib import Path
argv = sys.argv[1:]
Path(os.environ["FAKE_ARGV_OUT"]).write_text(json.dumps({{"argv": argv, "cwd": os.getcwd(),
    "caches": {{p.name: len(json.loads(p.read_text())["conversations"])
               for p in Path("cosmos_rl").glob("conversations_*.json")}},
    "path": os.environ["PATH"].split(os.pathsep), "video_reader": os.environ.get("FORCE_QWENVL_VIDEO_READER")}}))
config = tomllib.loads(Path(argv[argv.index("--config") + 1]).read_text())
out = Path(config["train"]["output_dir"])
got = []
signal.signal(signal.SIGUSR1, lambda s, f: got.append(s))
if os.environ.get("FAKE_WAIT_LATEST"):  # an early export: does cosmos-exp publish it while we still run?
    early = out / "safetensors" / "step_1"
    early.mkdir(parents=True)
    (early / "config.json").write_text("{{}}")
    (early / "model.safetensors").write_bytes(b"w")
    latest = Path("checkpoints") / "latest"
    deadline = time.time() + 60
    while not latest.exists() and time.time() < deadline:
        time.sleep(0.05)
    Path(os.environ["FAKE_ARGV_OUT"] + ".latest").write_text(latest.read_text() if latest.exists() else "none")
if os.environ.get("FAKE_WAIT_SIGNAL"):
    Path(os.environ["FAKE_ARGV_OUT"] + ".ready").write_text("ready")
    deadline = time.time() + 60
    while not got and time.time() < deadline:
        time.sleep(0.05)
    Path(os.environ["FAKE_ARGV_OUT"] + ".signal").write_text(str(got))
for step in (2, 4):
    export = out / "safetensors" / f"step_{{step}}"
    export.mkdir(parents=True)
    (export / "config.json").write_text(json.dumps({{"model_type": "qwen2_5_vl", "step": step}}))
    (export / "model.safetensors").write_bytes(b"weights")
    state = out / "checkpoints" / f"step_{{step}}" / "policy"  # complete: its config and every rank's marker
    state.mkdir(parents=True)
    (state / "cosmos_config").write_text("{{}}")
    (state / ".rank_0_complete").write_text("")
sys.exit(int(os.environ.get("FAKE_EXIT", "0")))
'''
TOOLS = ("python", "cosmos-rl", "redis-server", "redis-cli", "nvidia-smi")
# What the roles import, as stand-in modules of the fake cosmos-rl environment (empty, or failing to import).
ROLE_MODULES = ("cosmos_rl", "torch", "omegaconf", "qwen_vl_utils", "decord", "av", "torchvision")


def make_bin(root: Path, tools=TOOLS, broken=()) -> Path:
    """A stand-in for cosmos-rl's environment: its bin/ holds a `python` (a script running this Python over a
    folder of stand-in modules, those in `broken` failing to import), the launcher (#! that python), redis-server,
    redis-cli and an nvidia-smi that sees one GPU."""
    bin_dir = root / "rl_env" / "bin"
    modules = root / "rl_env" / "modules"
    for folder in (bin_dir, modules):
        folder.mkdir(parents=True, exist_ok=True)
    for name in ROLE_MODULES:
        (modules / f"{name}.py").write_text(f"raise ModuleNotFoundError(\"No module named '{name}'\")\n"
                                            if name in broken else "")
    scripts = {"python": f'#!/bin/sh\nPYTHONPATH="{modules}${{PYTHONPATH:+:$PYTHONPATH}}" exec {sys.executable} "$@"\n',
               "cosmos-rl": FAKE_COSMOS_RL.format(python=bin_dir / "python"),
               "redis-server": "#!/bin/sh\nexit 0\n", "redis-cli": "#!/bin/sh\nexit 0\n",
               "nvidia-smi": "#!/bin/sh\necho 'GPU 0: Fake GPU (UUID: GPU-fake-0)'\n"}
    for name in tools:
        (bin_dir / name).write_text(scripts[name])
        (bin_dir / name).chmod(0o755)
    return bin_dir


@pytest.fixture
def setup(tmp_path: Path, prepared) -> Dict[str, Path]:
    """Clips and a tiny model (its tokenizer counts each item's tokens before the launch)."""
    data = tmp_path / "data"
    make_synthetic(data, num_train=2, num_eval=1)
    return {"root": tmp_path, "data": data, "model": prepared["tiny_qwen2_5_vl"], "outputs": tmp_path / "outputs"}


def args(s: Dict[str, Path], *extra: str) -> List[str]:
    """The CLI arguments of a demo run on the fixture's data; free ports (a test server of another suite may
    hold cosmos-rl's default ports) and 8 frames unless the test sets them."""
    defaults = [f"backend.{k}={free_port()}" for k in ("redis_port", "controller_port")] + ["dataset.vision.nframes=8"]
    kept = [d for d in defaults if not any(e.startswith(d.split("=")[0] + "=") for e in extra)]
    return ["stage=sft", "backend=cosmos_rl", "experiment=demo", "dataset=synthetic_av", f"model.path={s['model']}",
            f"dataset.root={s['data']}", f"paths.root={s['outputs']}", *kept, *extra]


def run_dirs(outputs: Path) -> List[Path]:
    return sorted(p for p in (outputs / "runs").glob("*/*") if p.is_dir()) if (outputs / "runs").is_dir() else []


def test_dry_run_shows_toml_argv_validation_and_missing_tools(setup):
    proc = run_cli(args(setup, "dry_run=true"), cwd=setup["root"], env={"PATH": str(make_bin(setup["root"], ()))})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "cosmos-rl --config <run_dir>/cosmos_rl.toml --log-dir <run_dir>/cosmos_rl_logs --port " in out
    assert f"{ENTRY_SCRIPT} --cosmos-exp-run-dir <run_dir>" in out
    assert "strict cosmos-rl 0.4.7 key check passed" in out
    assert "cosmos-rl pydantic validation: " in out
    assert "redis-server is not on PATH" in out and "found 0 (nvidia-smi is not on PATH)" in out
    assert not setup["outputs"].exists()
    # The TOML itself, as a launch would write it.
    head = "  <run_dir>/cosmos_rl.toml:\n"
    assert head in out
    block = out.split(head, 1)[1].split("\ndry run: nothing was written")[0]
    shown = tomllib.loads("\n".join(line[4:] for line in block.splitlines()))
    assert shown["train"]["output_dir"] == "<run_dir>/cosmos_rl/sft" and shown["train"]["compile"] is False
    assert shown["train"]["train_batch_per_replica"] == 4 and shown["policy"]["parallelism"]["tp_size"] == 1
    assert "cosmos-rl's roles decode videos with decord: FORCE_QWENVL_VIDEO_READER=decord" in out
    assert "clip cache: does not apply on backend=cosmos_rl" in out and "note: data:" not in out


def test_a_pyav_run_says_which_reader_cosmos_rl_uses(setup):
    proc = run_cli(args(setup, "dry_run=true", "dataset.vision.backend=pyav"), cwd=setup["root"],
                   env={"PATH": str(make_bin(setup["root"], ()))})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert ("qwen-vl-utils has no pyav reader, so its data packers decode videos with its torchvision reader "
            "(FORCE_QWENVL_VIDEO_READER=torchvision; torchvision.io decodes with PyAV)") in proc.stdout
    cfg = compose_typed(["stage=sft", "backend=cosmos_rl", "dataset.vision.backend=pyav"])
    assert roles_env(cfg, {"PATH": "/usr/bin"})["FORCE_QWENVL_VIDEO_READER"] == "torchvision"


def test_dry_run_names_the_cosmos_rl_version_beside_the_launcher(setup):
    bin_dir = make_bin(setup["root"], ["python", "cosmos-rl"])  # its python runs this one, where cosmos-rl is installed
    proc = run_cli(args(setup, "dry_run=true"), cwd=setup["root"], env={"PATH": str(bin_dir)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    from importlib.metadata import PackageNotFoundError, version
    try:
        installed = version("cosmos-rl")
    except PackageNotFoundError:
        assert "cosmos-rl 0" not in proc.stdout
        return
    assert f"cosmos-rl {installed} beside {bin_dir / 'cosmos-rl'}" in proc.stdout


def test_dry_run_rejects_a_misspelled_override_naming_it(setup):
    proc = run_cli(args(setup, "dry_run=true", "+backend.toml_overrides.train.optm_nmae=AdamW"), cwd=setup["root"])
    assert proc.returncode == 2
    assert "cosmos_rl.train.optm_nmae" in proc.stderr and "did you mean train.optm_name" in proc.stderr


@pytest.mark.parametrize("missing,words", [
    ("redis-server", "config error at 'backend.name': redis-server is not on PATH; cosmos-rl's controller starts one"),
    ("redis-cli", "config error at 'backend.name': redis-cli is not on PATH; cosmos-rl's controller stops its "
                  "redis-server with it"),
    ("nvidia-smi", "cosmos-rl needs 1 GPU(s)"),
    ("cosmos-rl", "the cosmos-rl launcher 'cosmos-rl' is not on PATH"),
])
def test_missing_tool_fails_before_anything_starts(setup, missing, words):
    bin_dir = make_bin(setup["root"], [t for t in TOOLS if t != missing])
    argv_out = setup["root"] / "argv.json"
    proc = run_cli(args(setup), cwd=setup["root"], env={"PATH": str(bin_dir), "FAKE_ARGV_OUT": str(argv_out)})
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert words in proc.stderr
    assert "apt-get install" in proc.stderr or missing in ("nvidia-smi", "cosmos-rl")
    assert not argv_out.exists()  # cosmos-rl was never started
    assert run_dirs(setup["outputs"]) == []  # and no run directory was kept


@pytest.mark.parametrize("reader,broken,key", [
    ("decord", "cosmos_rl", "backend.executable"), ("decord", "torch", "backend.executable"),
    ("decord", "omegaconf", "backend.executable"), ("decord", "decord", "dataset.vision.backend"),
    ("pyav", "av", "dataset.vision.backend"), ("pyav", "torchvision", "dataset.vision.backend"),
])
def test_a_module_the_roles_cannot_import_is_named_with_what_to_install(setup, reader, broken, key):
    """The roles' `python` (cosmos-rl's environment, first on their PATH) is asked to import each module in a
    real subprocess; one it cannot import stops the launch, named with the pip command for that python."""
    bin_dir = make_bin(setup["root"], broken=(broken,))
    argv_out = setup["root"] / "argv.json"
    proc = run_cli(args(setup, f"dataset.vision.backend={reader}"), cwd=setup["root"],
                   env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_ARGV_OUT": str(argv_out)})
    assert proc.returncode == 2, proc.stderr[-3000:]
    python = bin_dir / "python"
    assert (f"config error at '{key}': cosmos-rl's roles run {python}, which cannot import {broken} "
            f"(ModuleNotFoundError: No module named '{broken}') (install it there: {python} -m pip install ") \
        in proc.stderr
    problems = [line for line in proc.stderr.splitlines() if "config error at" in line]
    assert len(problems) == 1, proc.stderr[-3000:]  # only the broken one; the other modules import
    assert not argv_out.exists() and run_dirs(setup["outputs"]) == []


def test_every_missing_piece_gets_its_own_line(setup):
    bin_dir = make_bin(setup["root"], [t for t in TOOLS if t not in ("redis-server", "redis-cli")],
                       broken=("torch", "decord"))
    proc = run_cli(args(setup), cwd=setup["root"], env={"PATH": str(bin_dir)})
    assert proc.returncode == 2, proc.stderr[-3000:]
    problems = [line for line in proc.stderr.splitlines() if "config error at" in line]
    assert [p.split("':")[0].split("'")[-1] for p in problems] == \
        ["backend.executable", "dataset.vision.backend", "backend.name", "backend.name"]
    assert "cannot import torch" in problems[0] and "cannot import decord" in problems[1]
    assert "redis-server is not on PATH" in problems[2] and "redis-cli is not on PATH" in problems[3]


def test_the_roles_run_with_cosmos_rls_bin_first_on_path(setup, tmp_path):
    """The launch environment: the launcher's environment's bin/ first on PATH (a bare `python` there runs
    each role), ahead of a `python` earlier on the caller's PATH; our package alone on PYTHONPATH."""
    bin_dir = make_bin(setup["root"])
    other = tmp_path / "other_bin"
    other.mkdir()
    (other / "python").write_text("#!/bin/sh\nexit 9\n")
    (other / "python").chmod(0o755)
    cfg = compose_typed(["stage=sft", "backend=cosmos_rl", f"backend.executable={bin_dir / 'cosmos-rl'}"])
    env = roles_env(cfg, {"PATH": f"{other}:{os.environ['PATH']}"}, package_link_dir(tmp_path / "run"))
    path = env["PATH"].split(os.pathsep)
    assert path[:2] == [str(bin_dir), str(other)]
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(tmp_path / "run" / PYTHONPATH_DIR)
    proc = subprocess.run(["python", "-c", "import sys; print(sys.executable)"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == sys.executable  # the stand-in environment's python


def test_a_run_name_cosmos_rl_cannot_carry_is_refused(setup):
    proc = run_cli(args(setup, "dry_run=true", "name='my run'"), cwd=setup["root"])
    assert proc.returncode == 2 and "config error at 'name'" in proc.stderr and "shell" in proc.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("key", ["backend.redis_port", "backend.controller_port"])
def test_a_port_in_use_is_reported(setup, key):
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = run_cli(args(setup, f"{key}={port}"), cwd=setup["root"], env={"PATH": str(make_bin(setup["root"]))})
    assert proc.returncode == 2 and f"config error at '{key}'" in proc.stderr and f"port {port}" in proc.stderr


def test_too_few_gpus_is_reported(setup):
    bin_dir = make_bin(setup["root"])
    proc = run_cli(args(setup, "parallelism.nproc_per_node=2", "train.global_batch_size=4"), cwd=setup["root"],
                   env={"PATH": str(bin_dir)})
    assert proc.returncode == 2 and "needs 2 GPU(s)" in proc.stderr and "found 1" in proc.stderr


def test_launch_argv_toml_and_checkpoints(setup):
    bin_dir = make_bin(setup["root"])
    argv_out = setup["root"] / "argv.json"
    port = free_port()
    proc = run_cli(args(setup, f"backend.controller_port={port}", "train.keep_last_states=1"), cwd=setup["root"],
                   env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_ARGV_OUT": str(argv_out)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(setup["outputs"])
    run = run.absolute()
    seen = json.loads(argv_out.read_text())
    assert seen["argv"] == ["--config", str(run / "cosmos_rl.toml"), "--log-dir", str(run / "cosmos_rl_logs"),
                            "--port", str(port), str(ENTRY_SCRIPT), "--cosmos-exp-run-dir", str(run)]
    assert Path(seen["cwd"]).resolve() == run.resolve()
    # The roles' environment: cosmos-rl's bin/ first (a bare `python` runs each role), qwen-vl-utils told its reader.
    assert seen["path"][0] == str(bin_dir) and seen["video_reader"] == "decord"
    toml = tomllib.loads((run / "cosmos_rl.toml").read_text())
    assert toml["train"]["output_dir"] == str(run / "cosmos_rl" / "sft")
    assert toml["policy"]["model_name_or_path"] == str(setup["model"])
    # Exports published where the DeepSpeed backend puts checkpoints; every export kept, one training state
    # (cosmos-rl itself deletes nothing: its max_keep would take the exports with the states).
    assert toml["train"]["ckpt"]["max_keep"] == -1
    assert (run / "checkpoints" / "latest").read_text().strip() == "step_4"
    assert [p.name for p in ckpt.list_complete(run)] == ["step_2", "step_4"]
    assert sorted(p.name for p in (run / "cosmos_rl" / "sft" / "checkpoints").iterdir()) == ["step_4"]
    assert sorted(p.name for p in (run / "cosmos_rl" / "sft" / "safetensors").iterdir()) == ["step_2", "step_4"]
    assert "training states removed ['step_2']" in proc.stderr + proc.stdout
    assert json.loads((run / "checkpoints" / "step_4" / "config.json").read_text())["step"] == 4
    assert ckpt.read_checkpoint_info(run / "checkpoints" / "step_4")["backend"] == "cosmos_rl"
    result = json.loads((run / "train_result.json").read_text())
    assert result["latest"] == "step_4" and result["exit_status"] == 0
    assert json.loads((run / "run.json").read_text())["status"] == "succeeded"


def test_relaunch_in_the_same_run_dir_drops_the_dataset_cache(setup):
    bin_dir = make_bin(setup["root"])
    argv_out = setup["root"] / "argv.json"
    run = setup["root"] / "fixed_run"
    (run / "cosmos_rl").mkdir(parents=True)
    (run / "cosmos_rl" / "conversations_train.json").write_text('{"conversations": []}')  # from a first launch
    proc = run_cli(args(setup, f"hydra.run.dir={run}"), cwd=setup["root"],
                   env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_ARGV_OUT": str(argv_out)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    # The stale cache is gone; the training split's was written for this launch (both items fit).
    assert json.loads(argv_out.read_text())["caches"] == {"conversations_train.json": 2}
    assert tomllib.loads((run / "cosmos_rl.toml").read_text())["train"]["resume"] is True


def test_launcher_failure_propagates(setup):
    bin_dir = make_bin(setup["root"])
    proc = run_cli(args(setup), cwd=setup["root"], env={"PATH": f"{bin_dir}:{os.environ['PATH']}",
                                                        "FAKE_ARGV_OUT": str(setup["root"] / "a.json"),
                                                        "FAKE_EXIT": "3"})
    assert proc.returncode != 0
    assert "cosmos-rl exited with status 3" in proc.stderr
    (run,) = run_dirs(setup["outputs"])
    assert json.loads((run / "run.json").read_text())["status"] == "failed"
    assert (run / "checkpoints" / "latest").read_text().strip() == "step_4"  # what it exported is still found


@pytest.mark.slow
@pytest.mark.parametrize("sent", [signal.SIGUSR1, signal.SIGUSR2])  # USR2: submitit's pre-timeout signal
def test_sigusr1_is_forwarded_to_cosmos_rl(setup, sent):
    bin_dir = make_bin(setup["root"])
    argv_out = setup["root"] / "argv.json"
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", FAKE_ARGV_OUT=str(argv_out), FAKE_WAIT_SIGNAL="1")
    proc = subprocess.Popen([sys.executable, "-m", "cosmos_exp.run", *args(setup)], cwd=setup["root"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready = Path(str(argv_out) + ".ready")
    deadline = time.monotonic() + 120
    while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ready.exists(), proc.communicate()[1][-3000:]
    proc.send_signal(sent)
    _, err = proc.communicate(timeout=120)
    assert Path(str(argv_out) + ".signal").read_text() == str([int(signal.SIGUSR1)])
    (run,) = run_dirs(setup["outputs"])
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "interrupted", err[-2000:]
    assert (run / "checkpoints" / "latest").read_text().strip() == "step_4"


@pytest.mark.slow
def test_exports_are_published_while_cosmos_rl_runs(setup):
    bin_dir = make_bin(setup["root"])
    argv_out = setup["root"] / "argv.json"
    proc = run_cli(args(setup, "backend.checkpoint_poll_s=0.1"), cwd=setup["root"],
                   env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_ARGV_OUT": str(argv_out),
                        "FAKE_WAIT_LATEST": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert Path(str(argv_out) + ".latest").read_text().strip() == "step_1"  # seen by the still-running launcher
    (run,) = run_dirs(setup["outputs"])
    assert [p.name for p in ckpt.list_complete(run)] == ["step_1", "step_2", "step_4"]


def _export(path: Path, shards=("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    (path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {f"w{i}": s for i, s in
                                                                                  enumerate(shards)}}))
    for s in shards:
        (path / s).write_bytes(b"x")
    return path


def test_sync_checkpoints_skips_partial_drops_removed_and_survives_a_move(tmp_path):
    run = tmp_path / "run"
    exports = output_dir(run.absolute()) / "safetensors"
    _export(exports / "step_10")
    partial = _export(exports / "step_20")
    (partial / "model-00002-of-00002.safetensors").unlink()  # still being written
    assert "missing shards" in export_problem(partial)
    assert sync_checkpoints(run, settle_s=3600) == []  # just written: not yet while training runs
    assert [p.name for p in sync_checkpoints(run)] == ["step_10"]
    assert (run / "checkpoints" / "latest").read_text().strip() == "step_10"

    (partial / "model-00002-of-00002.safetensors").write_bytes(b"x")
    _export(exports / "step_30")
    import shutil
    shutil.rmtree(exports / "step_10")  # cosmos-rl's max_keep removed it
    assert [p.name for p in sync_checkpoints(run)] == ["step_20", "step_30"]
    assert not (run / "checkpoints" / "step_10").exists()
    assert (run / "checkpoints" / "latest").read_text().strip() == "step_30"

    moved = tmp_path / "moved"
    run.rename(moved)  # relative links: the run directory moves as a whole
    assert (moved / "checkpoints" / "step_30" / "config.json").read_text() == "{}"
    assert ckpt.newest_complete(moved).name == "step_30"


def _state(run: Path, step: int, ranks: int) -> Path:
    """A cosmos-rl training state of `step` with the markers of its first `ranks` saving ranks."""
    policy = output_dir(run.absolute()) / "checkpoints" / f"step_{step}" / "policy"
    policy.mkdir(parents=True)
    (policy / "cosmos_config").write_text("{}")
    for r in range(ranks):
        (policy / f".rank_{r}_complete").write_text("")
    return policy.parent


def test_retention_prunes_states_not_exports_and_spares_the_unfinished_and_the_best(tmp_path):
    from cosmos_exp.train.cosmos_rl.retention import prune

    run = (tmp_path / "run").absolute()
    doc = {"policy": {"parallelism": {"tp_size": 1, "dp_shard_size": 2, "cp_size": 1, "pp_size": 1,
                                      "dp_replicate_size": 1}}}
    out = output_dir(run)
    for step in (10, 20, 30, 40):
        _state(run, step, ranks=2)
        _export(out / "safetensors" / f"step_{step}")
    _state(run, 50, ranks=1)  # still being saved: one of two ranks done
    (out.parent / "best").mkdir(parents=True)
    (out.parent / "best" / "checkpoints").symlink_to(out / "checkpoints" / "step_10")  # validation's best
    assert prune(run, doc, keep_states=2, keep_exports=None) == {"states": ["step_20"], "exports": []}
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_10", "step_30", "step_40", "step_50"]
    assert len(list((out / "safetensors").iterdir())) == 4
    assert [p.name for p in sync_checkpoints(run)] == ["step_10", "step_20", "step_30", "step_40"]
    # Exports pruned too when asked; their links go with them.
    assert prune(run, doc, keep_states=2, keep_exports=1) == {"states": [], "exports": ["step_10", "step_20", "step_30"]}
    assert [p.name for p in sync_checkpoints(run)] == ["step_40"]
    assert prune(run, doc, keep_states=None, keep_exports=None) == {"states": [], "exports": []}


def test_a_max_keep_override_is_refused_naming_why():
    from cosmos_exp.config import ConfigError
    from cosmos_exp.train.cosmos_rl.render import render

    cfg = compose_typed(["stage=sft", "backend=cosmos_rl", "experiment=demo", "model.path=/m", "dataset.root=/d",
                         "+backend.toml_overrides.train={ckpt: {max_keep: 3}}"])
    with pytest.raises(ConfigError, match="max_keep=3 would make cosmos-rl delete each Hugging Face export"):
        render(cfg, Path("/run"))


def test_the_stage_is_registered_for_the_cli():
    from omegaconf import OmegaConf

    from cosmos_exp.run import stage_module

    module = stage_module(OmegaConf.create({"stage": {"name": "sft"}, "backend": {"name": "cosmos_rl"}}))
    assert module.__name__ == "cosmos_exp.stages.sft_cosmos_rl"
    assert (CONF_DIR / "backend" / "cosmos_rl.yaml").is_file()


def test_plan_side_imports_no_heavy_library():
    code = ("import sys; import cosmos_exp.stages.sft_cosmos_rl, cosmos_exp.train.cosmos_rl.checkpoints; "
            "from cosmos_exp.train.cosmos_rl import pydantic_check; pydantic_check.load_config_class(); "
            "print(sorted(m for m in ('torch', 'transformers', 'deepspeed', 'cosmos_rl') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"


def test_published_export_is_a_checkpoint_the_caption_stage_accepts(prepared, tmp_path):
    """An HF export laid out as cosmos-rl writes it, published through links, passes the caption stage's
    checkpoint check and loads with the same weights."""
    import shutil

    import torch

    from cosmos_exp.infer.checkpoint import inspect_checkpoint
    from cosmos_exp.models.loading import load_model

    run = tmp_path / "run"
    export = output_dir(run.absolute()) / "safetensors" / "step_5"
    shutil.copytree(prepared["tiny_qwen2_5_vl"], export)
    (published,) = sync_checkpoints(run)
    info = inspect_checkpoint(str(published))
    assert info.model_type == "qwen2_5_vl" and info.num_weight_files >= 1
    ours, theirs = load_model(published), load_model(export)
    a, b = ours.state_dict(), theirs.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_run_launcher_keeps_going_when_a_checkpoint_look_fails(tmp_path):
    from cosmos_exp.train.cosmos_rl.launch import run_launcher

    calls = []

    def failing_look():
        calls.append(1)
        raise OSError("disk hiccup")

    argv = [sys.executable, "-c", "import time, sys; time.sleep(0.6); sys.exit(7)"]
    assert run_launcher(argv, tmp_path, every=failing_look, every_s=0.1) == 7
    assert len(calls) >= 2


def test_sweeps_find_and_trace_cosmos_rl_checkpoints(tmp_path):
    """The checkpoint sweep's discovery and lineage work on a cosmos_rl run the way they do on a DeepSpeed one."""
    from cosmos_exp.sweep.checkpoints import checkpoint_lineage, complete_checkpoints

    run = tmp_path / "run"
    exports = output_dir(run.absolute()) / "safetensors"
    for step in (20, 40):
        _export(exports / f"step_{step}")
    sync_checkpoints(run)
    found = complete_checkpoints(run)
    assert [p.name for p in found] == ["step_20", "step_40"]
    lineage = checkpoint_lineage(str(found[-1]))
    assert lineage["step"] == 40 and lineage["train_run"] == str(run.resolve())
    assert lineage["checkpoint_info"]["backend"] == "cosmos_rl"


# --- stopping: the launcher's whole process group -----------------------------------------------------------

# A stand-in for cosmos-rl's launcher (role launcher-sleep or launcher-exit): it starts children the way it
# starts its controller and ranks (in its own process group), each with a child of its own; one ignores
# SIGTERM, as a rank busy in a collective may. Every process adds its pid to PIDS; then the launcher sleeps, or
# exits with status 3 leaving them behind.
STAND_IN = """import os, signal, subprocess, sys, time
role, pids = sys.argv[1], sys.argv[2]
if role == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if role in ("plain", "stubborn"):
    subprocess.Popen([sys.executable, __file__, "grandchild", pids])
if role.startswith("launcher"):
    for kind in ("plain", "stubborn"):
        subprocess.Popen([sys.executable, __file__, kind, pids])
with open(pids, "a") as f:
    f.write(str(os.getpid()) + " ")
deadline = time.monotonic() + 60
while role == "launcher-exit" and time.monotonic() < deadline:
    with open(pids) as f:
        if len(f.read().split()) >= 5:
            sys.exit(3)
    time.sleep(0.02)
time.sleep(600)
"""


def started_pids(pids_file: Path, count: int = 5, timeout: float = 60) -> List[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = pids_file.read_text().split() if pids_file.exists() else []
        if len(found) >= count:
            return [int(p) for p in found]
        time.sleep(0.05)
    raise AssertionError(f"the stand-in launcher started {pids_file.read_text() if pids_file.exists() else 'nothing'}")


def kill_leftovers(pids: List[int]) -> None:
    for pid in pids:  # only what this test started, if the code under test left it running
        if live(pid):
            os.kill(pid, signal.SIGKILL)


def test_children_a_launcher_leaves_behind_are_stopped(tmp_path):
    from cosmos_exp.train.cosmos_rl.launch import run_launcher

    launcher = tmp_path / "launcher.py"
    launcher.write_text(STAND_IN)
    pids_file = tmp_path / "pids"
    code = run_launcher([sys.executable, str(launcher), "launcher-exit", str(pids_file)], tmp_path, grace_s=1.0)
    pids = started_pids(pids_file)
    try:
        assert code == 3
        assert [p for p in pids if live(p)] == []  # the stubborn child too, after the grace period
    finally:
        kill_leftovers(pids)


@pytest.mark.parametrize("sent", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_reaches_the_launchers_whole_process_group(tmp_path, sent):
    """SIGTERM to cosmos-exp: the launcher (which ignores it) and every process it started, their children
    included, are gone once cosmos-exp has exited; none survives holding a GPU."""
    launcher = tmp_path / "launcher.py"
    launcher.write_text(STAND_IN)
    pids_file = tmp_path / "pids"
    code = ("import sys\nfrom pathlib import Path\nfrom cosmos_exp.train.cosmos_rl.launch import run_launcher\n"
            "run_launcher(sys.argv[1:], Path('.'), grace_s=1.0)\n")
    ours = subprocess.Popen([sys.executable, "-c", code, sys.executable, str(launcher), "launcher-sleep", str(pids_file)],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pids: List[int] = []
    try:
        pids = started_pids(pids_file)
        ours.send_signal(sent)
        _, err = ours.communicate(timeout=120)
        assert "TrainingInterrupted: stopped by " + signal.Signals(sent).name in err
        assert [p for p in pids if live(p)] == []
    finally:
        ours.kill()
        kill_leftovers(pids)


# --- items longer than model_max_length ---------------------------------------------------------------------

# The Reason 2 recipe's vision settings and model_max_length.
REAL_RES = ["dataset.vision.nframes=16", "dataset.vision.max_pixels=360000", "model.model_max_length=4096"]


@pytest.fixture(scope="module")
def mixed_resolution(tmp_path_factory) -> Path:
    """A training split of one real-resolution clip (1936x1220, the Reason 2 evaluation clips' size) and two
    small ones."""
    import shutil

    from omegaconf import OmegaConf

    from cosmos_exp.config.data import DatasetConfig, SyntheticConfig, VisionConfig
    from cosmos_exp.data.synthetic import generate_synthetic_av

    root = tmp_path_factory.mktemp("mixed")
    real = root / "data"
    generate_synthetic_av(OmegaConf.structured(DatasetConfig(
        root=str(real), name="real", vision=VisionConfig(),
        synthetic=SyntheticConfig(num_train=1, num_eval=1, seconds=1.0, fps=16, width=1936, height=1220))))
    make_synthetic(root / "small", num_train=3, num_eval=1, seconds=1.0, fps=16, seed=1)
    for i in (1, 2):
        for sub, suffix in (("videos", ".camera_front_wide_120fov.mp4"), ("metas", ".label.json")):
            shutil.copy(root / "small" / "train" / sub / f"synth_train_{i:04d}{suffix}", real / "train" / sub)
    return real


@pytest.mark.parametrize("family,tokens,vision", [("tiny_qwen2_5_vl", 4635, 3536), ("tiny_qwen3_vl", 3779, 2576)])
def test_the_count_is_the_processors_own_limit(prepared, mixed_resolution, family, tokens, vision):
    """Counted from one frame, the real-resolution clip needs exactly as many tokens as encoding it does: at
    that model_max_length it trains, one fewer and the processor refuses it. (Qwen2.5-VL, 16 frames at
    360,000 px: 3,536 vision tokens, as the cookbook's Reason 1 setting gives; with its caption, over 4,096.)"""
    from cosmos_exp.data.datasets import build_dataset
    from cosmos_exp.data.processor import Processor

    cfg = compose_typed(["dataset=synthetic_av", f"dataset.root={mixed_resolution}", *REAL_RES])
    samples, _ = build_dataset(cfg.dataset, "train")
    (real,) = [s for s in samples if s.id == "synth_train_0000"]
    processor = Processor.from_pretrained(prepared[family])
    assert processor.count_tokens(real.conversation, cfg.dataset.vision) == (tokens, vision)
    for limit, fits in ((tokens, True), (tokens - 1, False)):
        processor.model_max_length = limit
        if fits:
            assert processor.encode(real.conversation, cfg.dataset.vision)["input_ids"].shape[0] >= tokens
        else:
            with pytest.raises(ValueError, match=f"exceed model_max_length={limit}"):
                processor.encode(real.conversation, cfg.dataset.vision)


def test_an_overlong_item_stops_the_run_before_the_launch(setup, mixed_resolution):
    bin_dir = make_bin(setup["root"])
    argv_out = setup["root"] / "argv.json"
    proc = run_cli(args({**setup, "data": mixed_resolution}, *REAL_RES), cwd=setup["root"],
                   env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_ARGV_OUT": str(argv_out)})
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert ("config error at 'model.model_max_length': 1 of 3 training items need more than 4096 tokens, which "
            "cosmos-rl would cut silently (the first: ") in proc.stderr
    assert "synth_train_0000.camera_front_wide_120fov.mp4, 4635 tokens, 3536 of them vision)" in proc.stderr
    assert "backend.overlong=skip" in proc.stderr
    assert not argv_out.exists()  # cosmos-rl never started


def test_overlong_items_can_be_left_out_with_a_report(setup, mixed_resolution):
    bin_dir = make_bin(setup["root"])
    argv_out = setup["root"] / "argv.json"
    proc = run_cli(args({**setup, "data": mixed_resolution}, *REAL_RES, "backend.overlong=skip"),
                   cwd=setup["root"], env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_ARGV_OUT": str(argv_out)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(argv_out.read_text())["caches"] == {"conversations_train.json": 2}  # what the roles read
    (run,) = run_dirs(setup["outputs"])
    report = json.loads((run / "cosmos_rl" / "data_report_train.json").read_text())
    assert (report["found"], report["used"], report["skipped_by_kind"]) == (3, 2, {"overlong": 1})
    (item,) = report["skipped_items"]
    assert item["file"].endswith("synth_train_0000.camera_front_wide_120fov.mp4")
    assert item["reason"] == "overlong: 4635 tokens (3536 vision) exceed model.model_max_length=4096"


@pytest.mark.parametrize("batches", ["mixed", "per_source"])
def test_a_mixed_blend_gives_both_backends_the_same_conversations(setup, batches):
    """Captions, multiple choice, LingoQA and reasoning answers in one blend: the conversations cosmos-rl's roles
    read (the stage's cache and the entry's dataset) are the DeepSpeed loop's, item for item and in the order
    each reads them (per_source: laid out in one-source blocks of a global batch, read unshuffled by both)."""
    from cosmos_exp.train.cosmos_rl.entry import dataset_factory
    from cosmos_exp.train.data import load_split, training_order

    from _data_fixtures import write_qa

    write_qa(setup["data"], "train")
    root = setup["data"]
    blend = ("dataset.blend=["
             f"{{name: captions, kind: caption, root: '{root}', weight: 0.4}},"
             f"{{name: mcq, kind: mcq, root: '{root}', weight: 0.3}},"
             f"{{name: lingoqa, kind: lingoqa, root: '{root}', weight: 0.1}},"
             f"{{name: reasoning, kind: qa, root: '{root}', weight: 0.2, user_prompt: reasoning}}]")
    bin_dir = make_bin(setup["root"])
    argv_out = setup["root"] / "argv.json"
    proc = run_cli(args(setup, "dataset.kind=blend", blend, "dataset.blend_length=40",
                        f"dataset.blend_batches={batches}"), cwd=setup["root"],
                   env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_ARGV_OUT": str(argv_out)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(setup["outputs"])
    cfg = ckpt.load_run_config(run)
    deepspeed_side = [s.conversation for s in training_order(cfg, load_split(cfg, cfg.dataset.train_split)[0])]
    cache = json.loads((run / "cosmos_rl" / "conversations_train.json").read_text())["conversations"]
    dataset = dataset_factory(run)(None)
    cosmos_rl_side = [dataset[i] for i in range(len(dataset))]
    # per_source: each source's last block of the global batch (4) filled up from its first items.
    n = len(deepspeed_side)
    assert n == 40 if batches == "mixed" else (n % 4 == 0 and 40 <= n < 40 + 4 * 4)
    assert cache == deepspeed_side and cosmos_rl_side == deepspeed_side
    toml = tomllib.loads((run / "cosmos_rl.toml").read_text())
    assert toml["train"]["train_policy"]["dataloader_shuffle"] is (batches == "mixed")
    answers = {c[-1]["content"][:7] for c in deepspeed_side}
    assert "<think>" in answers and answers & set("ABCD") and any(a.startswith("{") for a in answers)
    report = json.loads((run / "cosmos_rl" / "data_report_train.json").read_text())
    assert set(report["sources"]) == {"captions", "mcq", "lingoqa", "reasoning"}
