"""Start `cosmos-rl` on our TOML and entry script: what must be there first, the argv, signal forwarding.

cosmos-rl needs its launcher on PATH, a redis-server on PATH (its controller starts one; without it the
launch dies with status 127 and little explanation), free ports for redis and its controller, and GPUs (it
calls nvidia-smi). We check all of them first and say what is missing and what to do.

cosmos-rl runs in its own environment (transformers<5): its roles must see nothing of ours but the
cosmos_exp package itself (see role_env).
"""

import logging
import os
import shlex
import shutil
import site
import socket
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Tuple


from cosmos_exp.config.schema import Config
from cosmos_exp.repro.metadata import PACKAGE_DIR
from cosmos_exp.runtime.processes import stop_all
from cosmos_exp.runtime.signals import forwarding, names
from cosmos_exp.train.cosmos_rl.entry import RUN_DIR_FLAG
from cosmos_exp.train.cosmos_rl.render import LOG_DIR, TOML_NAME, world
from cosmos_exp.train.signals import TrainingInterrupted

ENTRY_SCRIPT = Path(__file__).resolve().with_name("entry.py")
STOP_GRACE_S = 60.0
# <run_dir>/cosmos_rl_pythonpath/cosmos_exp -> the package running now: all of cosmos-exp that cosmos-rl sees.
PYTHONPATH_DIR = "cosmos_rl_pythonpath"
log = logging.getLogger("cosmos_exp")


class LaunchError(RuntimeError):
    """cosmos-rl could not be started, or it failed."""


def launch_argv(cfg: Config, run_dir: Path) -> List[str]:
    # The launcher found on our PATH (the one checked): the roles' PATH starts with another bin/ (role_env).
    run_dir = Path(run_dir)
    exe = str(cfg.backend.executable)
    return [shutil.which(exe) or exe, "--config", str(run_dir / TOML_NAME), "--log-dir", str(run_dir / LOG_DIR),
            "--port", str(cfg.backend.controller_port), str(ENTRY_SCRIPT), RUN_DIR_FLAG, str(run_dir)]


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


def launcher_bin_dir(executable: str, env: Optional[Dict[str, str]] = None) -> Optional[Path]:
    """The bin/ of cosmos-rl's environment: that of the Python in its launcher's #! line, else the launcher's."""
    env = os.environ if env is None else env
    found = shutil.which(executable, path=env.get("PATH"))
    if found is None:
        return None
    interpreter = launcher_interpreter(found)
    return Path(interpreter).parent if interpreter and os.path.isabs(interpreter) else Path(found).parent


def launch_env(pythonpath_dir: Path, bin_dir: Optional[Path], env: Dict[str, str],
               own_site_dirs: Iterable[Path]) -> Dict[str, str]:
    """The environment cosmos-rl starts its roles in. PYTHONPATH: the folder holding only cosmos_exp first,
    and none of this environment's site-packages that ours may carry. PATH: cosmos-rl's bin/ first, because
    each role is started with a bare `python` (the first on PATH, ours when our venv is activated)."""
    own = {Path(p).resolve() for p in own_site_dirs}
    kept = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p).resolve() not in own]
    out = dict(env, PYTHONPATH=os.pathsep.join([str(pythonpath_dir), *kept]))
    if bin_dir is not None:
        rest = [p for p in env.get("PATH", "").split(os.pathsep) if p and Path(p) != Path(bin_dir)]
        out["PATH"] = os.pathsep.join([str(bin_dir), *rest])
    return out


def role_env(cfg: Config, run_dir: Path) -> Dict[str, str]:
    """launch_env for this run: the package link made in the run directory, this process's environment."""
    return launch_env(package_link_dir(run_dir), launcher_bin_dir(str(cfg.backend.executable)), dict(os.environ),
                      environment_site_dirs())


def port_free(port: int) -> bool:
    """Whether a TCP port can be bound on this node now (redis and the controller listen on all interfaces)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def shell_unsafe(argv: List[str]) -> List[str]:
    """Arguments cosmos-rl cannot pass on: it joins the script and its arguments into shell command strings
    without quoting, so a path with a space or a shell character would break or run something else."""
    return [a for a in argv[1:] if shlex.quote(a) != a]


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


def count_gpus(env: Optional[Dict[str, str]] = None) -> Tuple[int, str]:
    """(visible GPUs, how we know): nvidia-smi -L, limited by CUDA_VISIBLE_DEVICES when it is set."""
    env = dict(os.environ if env is None else env)
    smi = shutil.which("nvidia-smi", path=env.get("PATH"))
    if smi is None:
        return 0, "nvidia-smi is not on PATH"
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30, env=env)
    except (OSError, subprocess.TimeoutExpired) as err:
        return 0, f"nvidia-smi -L failed: {err}"
    gpus = [line for line in out.stdout.splitlines() if line.startswith("GPU ")]
    if out.returncode != 0:
        return 0, f"nvidia-smi -L exited with status {out.returncode}: {out.stderr.strip()[:200]}"
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return min(len(gpus), len([v for v in visible.split(",") if v.strip()])), "nvidia-smi -L and CUDA_VISIBLE_DEVICES"
    return len(gpus), "nvidia-smi -L"


def preflight(cfg: Config, env: Optional[Dict[str, str]] = None) -> List[Tuple[str, str, str]]:
    """What stops a launch on this machine, as (config key, problem, what to do); empty when ready."""
    env = dict(os.environ if env is None else env)
    path = env.get("PATH")
    problems = []
    exe = str(cfg.backend.executable)
    found_exe = shutil.which(exe, path=path)
    own_env = "install cosmos-rl==0.4.7 in its own environment (it pins transformers<5) and put its bin/ on " \
              "PATH, or set backend.executable=/path/to/that/env/bin/cosmos-rl"
    if found_exe is None:
        problems.append(("backend.executable", f"the cosmos-rl launcher {exe!r} is not on PATH", own_env))
    elif Path(found_exe).resolve().parent == Path(sys.prefix).resolve() / "bin":
        # install.sh --test puts cosmos-rl here without its dependencies, only to validate TOMLs.
        problems.append(("backend.executable", f"{found_exe} is cosmos-exp's own environment, where cosmos-rl is "
                         "installed for TOML validation only (its transformers<5 stack is missing)", own_env))
    if shutil.which("redis-server", path=path) is None:
        problems.append(("backend.name", "redis-server is not on PATH; cosmos-rl's controller starts one and "
                         "the launch fails with status 127 without it",
                         "install it (apt-get install redis-server, or conda install -c conda-forge redis-server) "
                         "and put it on PATH"))
    for key, what in (("backend.redis_port", "redis-server"), ("backend.controller_port", "the cosmos-rl controller")):
        port = int(cfg.backend[key.split(".")[1]])
        if not port_free(port):
            problems.append((key, f"port {port} for {what} is in use on this node (another cosmos-rl run?)",
                             f"pick a free one, e.g. {key}={port + 1}"))
    needed = world(cfg)
    found, how = count_gpus(env)
    if found < needed:
        problems.append(("parallelism.nproc_per_node",
                         f"cosmos-rl needs {needed} GPU(s) (tp_size x dp_shard_size) but found {found} ({how})",
                         "run on a GPU node (hydra/launcher=slurm), or lower parallelism.nproc_per_node"))
    return problems


def run_launcher(argv: List[str], run_dir: Path, env: Optional[Dict[str, str]] = None,
                 every: Optional[Callable[[], object]] = None, every_s: float = 30.0) -> int:
    """Run cosmos-rl to the end, forwarding stop signals (runtime/signals.py: it checkpoints on SIGUSR1); its
    exit status. `every` is called every `every_s` seconds while it runs (to publish checkpoints as they appear).

    It gets its own session so that a signal meant for the run reaches it once, through us, and so that
    stopping it stops its whole process group (controller, redis, workers)."""
    proc: Optional[subprocess.Popen] = None

    def send(sig: int) -> None:
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)

    with forwarding(send, chain=False) as received:
        try:
            proc = subprocess.Popen(argv, cwd=str(run_dir), env=env, start_new_session=True)
            while True:
                try:
                    code = proc.wait(timeout=every_s if every else None)
                    break
                except subprocess.TimeoutExpired:
                    try:
                        every()
                    except Exception as err:  # noqa: BLE001 - a failed look must not stop the training
                        log.warning("while cosmos-rl runs: %s", err)
        finally:
            if proc is not None and proc.poll() is None:  # we are failing: do not leave cosmos-rl behind
                stop_all([proc], STOP_GRACE_S)
    if received:
        raise TrainingInterrupted(f"stopped by {names(received)} (forwarded to cosmos-rl, exit status {code})")
    return code
