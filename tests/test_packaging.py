"""cosmos_exp as an installed package: a built wheel runs from any directory in a fresh venv and records
the commit it was built from; a lab's presets come in with --config-dir / hydra.searchpath (single runs and
the multirun preflight alike); cosmos-rl's Python sees our package and nothing else of our environment."""

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Dict

import pytest

from cosmos_exp.repro.metadata import code_state, git_state, source_root
from cosmos_exp.run import CONF_DIR, stage_module
from cosmos_exp.sweep.preflight import preflight, split_argv
from cosmos_exp.train.cosmos_rl import entry as cosmos_rl_entry
from cosmos_exp.train.cosmos_rl.environment import (PYTHONPATH_DIR, environment_site_dirs, launch_env,
                                                    launcher_bin_dir, package_link_dir)

from conftest import REPO_ROOT, run_cli

LAB_MODEL = """# A lab's own preset on top of a shipped one: its models live at its own path.
defaults:
  - tiny_qwen3_vl
  - _self_
name: lab_model
path: /lab/models/tiny_qwen3_vl
"""
RECORD_KEYS = ("commit", "dirty", "diff_sha256")


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=lab", "-c", "user.email=lab@example.org", *args], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Dict[str, Path]:
    """The wheel of this checkout, installed (--no-deps) into a fresh venv that sits inside some other git
    repository (a lab's); the dependencies come from this environment's site-packages folders through a .pth
    file, which adds them but processes none of their own .pth files (the editable install's finder)."""
    root = tmp_path_factory.mktemp("wheel")
    lab = root / "lab_repo"
    lab.mkdir()
    _git(lab, "init", "-q")
    (lab / "README").write_text("a lab's repository that happens to hold the venv\n")
    _git(lab, "add", "README")
    _git(lab, "commit", "-q", "-m", "lab")
    # Nothing of the checkout on the path (PYTHONPATH would show pip its cosmos_exp.egg-info as installed).
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    wheels = root / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            "--no-cache-dir", "--quiet", "-w", str(wheels), str(REPO_ROOT)],
                           env=env, capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = wheels.glob("cosmos_exp-*.whl")
    venv = lab / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    # Installed before the .pth exists, so pip sees nothing of this environment (not its editable install).
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                              "--no-cache-dir", "--quiet", str(wheel)], env=env, capture_output=True, text=True,
                             timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    site_dir = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   check=True, capture_output=True, text=True).stdout.strip())
    deps = [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages")]  # not the checkout
    (site_dir / "shared_dependencies.pth").write_text("".join(f"{p}\n" for p in deps))
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    return {"venv": venv, "bin": venv / "bin", "site": site_dir, "cwd": elsewhere, "lab": lab, "env": env,
            "wheel": wheel}


def _run(inst: Dict[str, Path], *argv: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], cwd=inst["cwd"], env=inst["env"], capture_output=True, text=True,
                          timeout=timeout)


def test_the_wheel_runs_from_another_directory_without_the_checkout(installed):
    probe = _run(installed, installed["bin"] / "python", "-c",
                 "import json, sys, cosmos_exp; from cosmos_exp.run import CONF_DIR; "
                 "print(json.dumps({'file': cosmos_exp.__file__, 'conf': str(CONF_DIR), 'path': sys.path}))")
    assert probe.returncode == 0, probe.stderr[-2000:]
    seen = json.loads(probe.stdout)
    assert Path(seen["file"]).parent == installed["site"] / "cosmos_exp"
    assert Path(seen["conf"]) == installed["site"] / "cosmos_exp" / "conf"
    assert str(REPO_ROOT) not in seen["path"]

    job = _run(installed, installed["bin"] / "cosmos-exp", "--cfg", "job", "model=cosmos_reason2_2b")
    assert job.returncode == 0, job.stderr[-2000:]
    assert "name: cosmos_reason2_2b" in job.stdout and "stage:" in job.stdout

    dry = _run(installed, installed["bin"] / "cosmos-exp", "stage=prepare", "dataset=synthetic_av",
               "model=tiny_qwen3_vl", "dry_run=true")
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert "plan for stage 'prepare'" in dry.stdout and "dry run: nothing was written" in dry.stdout
    assert not (installed["cwd"] / "outputs").exists()

    # Our Hydra launcher plugin ships in the wheel's hydra_plugins and is found beside hydra-submitit's.
    assert (installed["site"] / "hydra_plugins" / "cosmos_exp_launcher" / "local_parallel.py").is_file()
    sweep = _run(installed, installed["bin"] / "cosmos-exp", "-m", "hydra/launcher=local_parallel", "stage=prepare",
                 "name=a,b", "dry_run=true")
    assert sweep.returncode == 0, sweep.stderr[-2000:]
    assert sweep.stdout.count("plan for stage 'prepare'") == 2


def test_a_wheel_run_records_the_build_commit_not_the_surrounding_repository(installed):
    out = installed["cwd"] / "outputs"
    proc = _run(installed, installed["bin"] / "cosmos-exp", "stage=prepare", "model=tiny_qwen3_vl",
                "dataset.synthetic.num_train=2", "dataset.synthetic.num_eval=1", f"paths.root={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_json,) = out.glob("runs/*/*/run.json")
    code = json.loads(run_json.read_text())["code"]
    assert code["origin"] == "installed package" and code["version"] == code_state()["version"]
    assert Path(code["path"]) == installed["site"] / "cosmos_exp"
    here = git_state(REPO_ROOT)  # the checkout the wheel was built from, unchanged since the build
    assert {k: code.get(k) for k in RECORD_KEYS} == {k: here.get(k) for k in RECORD_KEYS}
    assert code["commit"] != _git(installed["lab"], "rev-parse", "HEAD")

    # Reproduced with the same installation: the same code, so no revision warning.
    again = _run(installed, installed["bin"] / "cosmos-exp-reproduce", run_json.parent, "--out",
                 installed["cwd"] / "again")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resolved config identical" in again.stdout and "code revision differs" not in again.stderr
    assert json.loads((installed["cwd"] / "again" / "run.json").read_text())["code"]["origin"] == "installed package"


def test_provenance_tells_a_checkout_from_an_installed_copy(tmp_path):
    assert source_root() == REPO_ROOT and code_state()["origin"] == "source checkout"
    site_packages = tmp_path / "site-packages"  # inside a git repository, as a lab's venv may be
    (site_packages / "cosmos_exp").mkdir(parents=True)
    _git(tmp_path, "init", "-q")
    assert source_root(site_packages / "cosmos_exp") is None
    state = code_state(site_packages / "cosmos_exp")
    assert state["origin"] == "installed package" and state["commit"] is None and "no build record" in state["note"]
    (site_packages / "cosmos_exp" / "_build_info.json").write_text(json.dumps({"commit": "abc123", "dirty": False}))
    assert code_state(site_packages / "cosmos_exp")["commit"] == "abc123"
    assert git_state(site_packages)["commit"] is None  # not the top of the repository that contains it


# --- a lab's presets ----------------------------------------------------------------------------------------

@pytest.fixture
def lab_conf(tmp_path: Path) -> Path:
    conf = tmp_path / "lab_conf"
    (conf / "model").mkdir(parents=True)
    (conf / "model" / "lab_model.yaml").write_text(LAB_MODEL)
    (conf / "model" / "lab_typo.yaml").write_text(LAB_MODEL.replace("path:", "pth:"))
    return conf


def test_a_config_dir_preset_is_picked_up_by_a_single_run(lab_conf, tmp_path):
    for how in (["--config-dir", str(lab_conf)], [f"hydra.searchpath=[file://{lab_conf}]"]):
        proc = run_cli([*how, "model=lab_model", "stage=prepare", "dry_run=true"], cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "path: /lab/models/tiny_qwen3_vl" in proc.stdout and "name: lab_model" in proc.stdout


def test_a_config_dir_preset_is_found_by_the_multirun_preflight(lab_conf, tmp_path, capsys):
    sweep = tmp_path / "sweep"
    for how in (["--config-dir", str(lab_conf)], [f"--config-dir={lab_conf}"],
                [f"hydra.searchpath=['file://{lab_conf}']"]):
        argv = ["-m", *how, "stage=prepare", "model=lab_model,tiny_qwen3_vl", f"hydra.sweep.dir={sweep}"]
        out = preflight(argv, CONF_DIR, stage_module)
        assert out[:1 + len(how)] == argv[:1 + len(how)]  # the flag and its value stay together, for Hydra
        jobs = json.loads((sweep / "sweep.json").read_text())["jobs"]
        assert [j["overrides"][-1] for j in jobs] == ["model=lab_model", "model=tiny_qwen3_vl"]
    # It really reads the lab's file: a misspelled key in it stops the sweep, naming the key.
    with pytest.raises(SystemExit) as exit_info:
        preflight(["-m", "--config-dir", str(lab_conf), "stage=prepare", "model=lab_model,lab_typo"],
                  CONF_DIR, stage_module)
    assert exit_info.value.code == 2 and "pth" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # without the lab's folder there is no such preset
        preflight(["-m", "stage=prepare", "model=lab_model,tiny_qwen3_vl"], CONF_DIR, stage_module)
    with pytest.raises(SystemExit) as exit_info:
        preflight(["-m", "--config-dir", str(tmp_path / "nowhere"), "model=lab_model,tiny_qwen3_vl"],
                  CONF_DIR, stage_module)
    assert exit_info.value.code == 2 and "--config-dir" in capsys.readouterr().err


def test_a_multirun_with_a_config_dir_runs_through_the_cli(lab_conf, tmp_path):
    proc = run_cli(["-m", "--config-dir", str(lab_conf), "stage=prepare", "model=lab_model,tiny_qwen3_vl",
                    "dry_run=true"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "2 sweep job(s) validated" in proc.stderr and "path: /lab/models/tiny_qwen3_vl" in proc.stdout


def test_split_argv_keeps_flag_values_with_their_flags():
    assert split_argv(["-m", "--config-dir", "/lab", "a=1", "-cd", "/lab2", "--cfg", "job", "b=2"]) == \
        (["-m", "--config-dir", "/lab", "-cd", "/lab2", "--cfg", "job"], ["a=1", "b=2"])
    assert split_argv(["--config-dir=/lab", "a=1"]) == (["--config-dir=/lab"], ["a=1"])


# --- what cosmos-rl's Python sees ---------------------------------------------------------------------------

def test_cosmos_rl_roles_see_only_the_package_of_this_environment(tmp_path):
    """A Python with nothing installed stands for cosmos-rl's environment: started the way cosmos-rl starts
    its roles (a bare `python` from PATH) with the environment the launch gives it, it imports cosmos_exp
    through the run directory's link and sees none of this environment's site-packages."""
    rl_env = tmp_path / "rl_env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(rl_env)], check=True, timeout=120)
    launcher = rl_env / "bin" / "cosmos-rl"
    launcher.write_text(f"#!{rl_env / 'bin' / 'python'}\nraise SystemExit(0)\n")
    launcher.chmod(0o755)
    own = environment_site_dirs()
    assert Path(sysconfig.get_paths()["purelib"]).resolve() in own
    inherited = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                 "PYTHONPATH": os.pathsep.join([str(own[0]), str(tmp_path / "kept")])}
    bin_dir = launcher_bin_dir(str(launcher), inherited)
    assert bin_dir == rl_env / "bin"
    run_dir = tmp_path / "run"
    folder = package_link_dir(run_dir)
    assert folder == run_dir / PYTHONPATH_DIR and [p.name for p in folder.iterdir()] == ["cosmos_exp"]
    assert (folder / "cosmos_exp").resolve() == Path(cosmos_rl_entry.__file__).resolve().parents[2]
    assert package_link_dir(run_dir) == folder  # a relaunch keeps the link

    env = launch_env(folder, bin_dir, inherited, own)
    assert env["PYTHONPATH"].split(os.pathsep) == [str(folder), str(tmp_path / "kept")]
    assert env["PATH"].split(os.pathsep)[0] == str(rl_env / "bin")
    code = ("import importlib.util, json, sys, cosmos_exp\n"
            "print(json.dumps({'exe': sys.executable, 'pkg': cosmos_exp.__file__, 'path': sys.path,\n"
            "    'omegaconf': importlib.util.find_spec('omegaconf') is not None}))\n")
    proc = subprocess.run(["python", "-c", code], cwd=run_dir, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen = json.loads(proc.stdout)
    assert Path(seen["exe"]).parent == rl_env / "bin"
    assert Path(seen["pkg"]).parent == folder / "cosmos_exp"
    assert not seen["omegaconf"]  # nothing of cosmos-exp's stack leaks in
    assert not {Path(p).resolve() for p in seen["path"] if p} & set(own)


def test_the_entry_never_adds_the_folder_above_an_installed_package(tmp_path):
    """Run by hand, the entry adds a checkout to sys.path, but not site-packages (transformers 5 lives there)."""
    source = Path(cosmos_rl_entry.__file__).read_text()
    for layout, expected in (("site-packages", False), ("checkout", True)):
        root = tmp_path / layout
        entry = root / "cosmos_exp" / "train" / "cosmos_rl" / "entry.py"
        entry.parent.mkdir(parents=True)
        entry.write_text(source)
        (root / "transformers").mkdir()
        if layout == "checkout":
            (root / "pyproject.toml").write_text('[project]\nname = "cosmos_exp"\n')
        code = ("import runpy, sys\n"
                f"sys.path.insert(0, {str(entry.parent)!r})  # as for a script run by path\n"
                f"runpy.run_path({str(entry)!r}, run_name='entry')['_fix_sys_path']()\n"
                f"print({str(root)!r} in sys.path, {str(entry.parent)!r} in sys.path)\n")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                              env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.split() == [str(expected), "False"], layout
