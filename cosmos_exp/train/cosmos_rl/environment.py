"""cosmos-rl's own environment, where its roles run: which one it is, the process environment the launch gives
the roles, and a look inside it (can its `python` import what the roles need?).

cosmos-rl lives in its own environment (its pins conflict with transformers 5) and starts every role with a
bare `python` (launcher/launch_controller.sh, launch_replica.sh): whatever `python` comes first on PATH runs our
entry script. So the launch puts that environment's bin/ first on PATH, and the preflight asks that `python`,
with that PATH, to import what a role imports.
"""

import json
import os
import shlex
import shutil
import site
import subprocess
import sysconfig
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

from cosmos_exp.config.schema import Config
from cosmos_exp.repro.metadata import PACKAGE_DIR

# <run_dir>/cosmos_rl_pythonpath/cosmos_exp -> the package running now: all of cosmos-exp that cosmos-rl sees.
PYTHONPATH_DIR = "cosmos_rl_pythonpath"
PROBE_TIMEOUT_S = 600.0  # importing cosmos_rl imports torch and transformers: tens of seconds on a cold disk
Problem = Tuple[str, str, str]  # (config key, what is wrong, what to do)

# What every role imports, as (module, pip package): cosmos-rl itself, torch, our config reader, and the
# qwen-vl-utils its data packers read videos with.
ROLE_MODULES = (("cosmos_rl", "cosmos-rl==0.4.7"), ("torch", "torch"), ("omegaconf", "omegaconf"),
                ("qwen_vl_utils", "qwen-vl-utils"))
# The modules a dataset.vision.backend needs there: ours lists and opens the clips with it; qwen-vl-utils
# decodes them with its torchvision reader for pyav (torchvision.io decodes with PyAV).
READER_MODULES = {"decord": (("decord", "decord"),), "pyav": (("av", "av"), ("torchvision", "torchvision"))}

# qwen-vl-utils (cosmos-rl's data packers decode videos with it) picks a reader by what is installed unless
# FORCE_QWENVL_VIDEO_READER names one: decord | torchvision | torchcodec. It has no PyAV reader of its own; its
# torchvision one decodes with PyAV (torchvision.io.read_video).
VIDEO_READER_VAR = "FORCE_QWENVL_VIDEO_READER"
QWENVL_READERS = {"decord": "decord", "pyav": "torchvision"}

_PROBE = ("import importlib, json, sys\n"
          "found = {}\n"
          "for name in sys.argv[1:]:\n"
          "    try:\n"
          "        importlib.import_module(name)\n"
          "        found[name] = None\n"
          "    except BaseException as err:\n"
          "        found[name] = (type(err).__name__ + ': ' + str(err)).splitlines()[0][:300]\n"
          "print(json.dumps(found))\n")


def package_link_dir(run_dir: Path, package_dir: Path = PACKAGE_DIR) -> Path:
    """A folder holding one entry, `cosmos_exp`, a link to the package running now. The folder the package
    itself sits in will not do: for an installed wheel it is this environment's site-packages, and its
    transformers 5 (and the rest) would shadow cosmos-rl's own stack."""
    folder = Path(run_dir) / PYTHONPATH_DIR
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / package_dir.name
    if os.path.realpath(link) != str(package_dir.resolve()):  # absent, or left by another installation
        staged = folder / f".{package_dir.name}.{os.getpid()}"
        if staged.is_symlink():
            staged.unlink()
        os.symlink(package_dir.resolve(), staged)
        os.replace(staged, link)
    return folder


def environment_site_dirs() -> List[Path]:
    """This Python's own site-packages folders: where cosmos-exp's stack (transformers 5, ...) lives."""
    paths = [*site.getsitepackages(), site.getusersitepackages(),
             *(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))]
    return sorted({Path(p).resolve() for p in paths})


def _shebang(executable: str) -> List[str]:
    """The interpreter command of a Python script's #! line; [] if it is not one."""
    try:
        with open(executable, "rb") as f:
            first = f.readline(512).decode("utf-8", "replace").strip()
    except OSError:
        return []
    if not first.startswith("#!"):
        return []
    interpreter = shlex.split(first[2:])
    return interpreter if interpreter and "python" in Path(interpreter[-1]).name else []


def launcher_interpreter(executable: str) -> Optional[str]:
    """The Python that runs the cosmos-rl launcher (its #! line), as written there."""
    interpreter = _shebang(executable)
    return interpreter[-1] if interpreter else None


def launcher_bin_dir(executable: str, env: Optional[Dict[str, str]] = None) -> Optional[Path]:
    """The bin/ of cosmos-rl's environment: that of the Python in its launcher's #! line, else the launcher's."""
    env = os.environ if env is None else env
    found = shutil.which(executable, path=env.get("PATH"))
    if found is None:
        return None
    interpreter = launcher_interpreter(found)
    return Path(interpreter).parent if interpreter and os.path.isabs(interpreter) else Path(found).parent


def launcher_version(executable: str, env: Optional[Dict[str, str]] = None) -> Optional[str]:
    """The cosmos-rl version installed beside its launcher (the Python of the script's #! line); None if
    that cannot be told (not a Python script, no such package there)."""
    interpreter = _shebang(executable)
    if not interpreter:
        return None
    code = "from importlib.metadata import version; print(version('cosmos-rl'))"
    try:
        out = subprocess.run([*interpreter, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def launch_env(pythonpath_dir: Optional[Path], bin_dir: Optional[Path], env: Dict[str, str],
               own_site_dirs: Iterable[Path]) -> Dict[str, str]:
    """The environment cosmos-rl starts its roles in. PYTHONPATH: the folder holding only cosmos_exp first,
    and none of this environment's site-packages that ours may carry. PATH: cosmos-rl's bin/ first, because
    each role is started with a bare `python` (the first on PATH, ours when our venv is activated)."""
    own = {Path(p).resolve() for p in own_site_dirs}
    kept = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p).resolve() not in own]
    out = dict(env)
    if pythonpath_dir is not None:
        kept.insert(0, str(pythonpath_dir))
    if kept:
        out["PYTHONPATH"] = os.pathsep.join(kept)
    else:
        out.pop("PYTHONPATH", None)
    if bin_dir is not None:
        rest = [p for p in env.get("PATH", "").split(os.pathsep) if p and Path(p) != Path(bin_dir)]
        out["PATH"] = os.pathsep.join([str(bin_dir), *rest])
    return out


def roles_env(cfg: Config, env: Optional[Dict[str, str]] = None,
              pythonpath_dir: Optional[Path] = None) -> Dict[str, str]:
    """launch_env for this config: cosmos-rl's bin/ found from backend.executable on `env`'s PATH, and
    qwen-vl-utils told which video reader to use (dataset.vision.backend), not left to pick by what is installed."""
    env = dict(os.environ if env is None else env)
    out = launch_env(pythonpath_dir, launcher_bin_dir(str(cfg.backend.executable), env), env,
                     environment_site_dirs())
    out[VIDEO_READER_VAR] = QWENVL_READERS[str(cfg.dataset.vision.backend)]
    return out


def video_reader_note(cfg: Config) -> str:
    """What reads the videos in cosmos-rl's roles, for the plan."""
    ours = str(cfg.dataset.vision.backend)
    theirs = QWENVL_READERS[ours]
    if ours == theirs:
        return (f"cosmos-rl's roles decode videos with {ours}: {VIDEO_READER_VAR}={theirs} for qwen-vl-utils (its "
                f"data packers), dataset.vision.backend={ours} for our dataset")
    return (f"cosmos-rl's roles: qwen-vl-utils has no {ours} reader, so its data packers decode videos with its "
            f"{theirs} reader ({VIDEO_READER_VAR}={theirs}; torchvision.io decodes with PyAV), our dataset "
            f"opens the clips with dataset.vision.backend={ours}")


def role_env(cfg: Config, run_dir: Path) -> Dict[str, str]:
    """The environment of this run's launch: the package link made in the run directory, this process's
    environment."""
    return roles_env(cfg, pythonpath_dir=package_link_dir(run_dir))


def needed_modules(cfg: Config) -> List[Tuple[str, str, str]]:
    """(config key, module, pip package) of everything a role imports for this config."""
    reader = str(cfg.dataset.vision.backend)
    return [("backend.executable", m, p) for m, p in ROLE_MODULES] + \
        [("dataset.vision.backend", m, p) for m, p in READER_MODULES[reader]]


def missing_modules(cfg: Config, env: Dict[str, str]) -> List[Problem]:
    """What the roles' `python` (the first on the roles' PATH in `env`) cannot import, one problem per module."""
    python = shutil.which("python", path=env.get("PATH"))
    first = env.get("PATH", "").split(os.pathsep)[0]
    if python is None:
        return [("backend.executable", f"there is no `python` on the roles' PATH (first {first}); cosmos-rl starts "
                 "each role with a bare python", "set backend.executable to the cosmos-rl of an environment that "
                 "has its own python")]
    needed = needed_modules(cfg)
    try:
        out = subprocess.run([python, "-c", _PROBE, *(m for _, m, _ in needed)], capture_output=True, text=True,
                             timeout=PROBE_TIMEOUT_S, env=env)
        lines = out.stdout.strip().splitlines()
        found = json.loads(lines[-1]) if out.returncode == 0 and lines else None
    except subprocess.TimeoutExpired:
        return [("backend.executable", f"{python} took over {PROBE_TIMEOUT_S:.0f} s to import "
                 f"{', '.join(m for _, m, _ in needed)}", "check that environment by hand")]
    except (OSError, ValueError) as err:
        return [("backend.executable", f"{python} cannot be run to check its modules ({err})",
                 "point backend.executable at a working cosmos-rl environment")]
    if not isinstance(found, dict):
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1][:300]
        return [("backend.executable", f"{python} failed to check its modules (status {out.returncode}: {tail})",
                 "point backend.executable at a working cosmos-rl environment")]
    return [(key, f"cosmos-rl's roles run {python}, which cannot import {module} ({found[module]})",
             f"install it there: {python} -m pip install {package}")
            for key, module, package in needed if found.get(module) is not None]
