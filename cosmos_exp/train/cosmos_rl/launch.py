"""Start `cosmos-rl` on our TOML and entry script: what must be there first, the argv, signal forwarding.

cosmos-rl needs its launcher, an environment of its own whose `python` imports what the roles import
(environment.py), redis-server and redis-cli (its controller starts the one and stops it with the other; a
missing one ends the launch with status 127 and little explanation), free ports for redis and its controller,
and GPUs (it calls nvidia-smi). We check all of them first and say what is missing and what to do.
"""

import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple


from cosmos_exp.config import ConfigError
from cosmos_exp.config.schema import Config
from cosmos_exp.runtime.processes import signal_group, stop_group
from cosmos_exp.runtime.signals import forwarding, names
from cosmos_exp.train.cosmos_rl.entry import RUN_DIR_FLAG
from cosmos_exp.train.cosmos_rl.environment import Problem, launcher_bin_dir, missing_modules, roles_env
from cosmos_exp.train.cosmos_rl.render import LOG_DIR, TOML_NAME, world
from cosmos_exp.train.signals import TrainingInterrupted

ENTRY_SCRIPT = Path(__file__).resolve().with_name("entry.py")
STOP_GRACE_S = 60.0
REDIS_HINT = "install redis (apt-get install redis-server, which brings redis-tools and its redis-cli; or " \
             "conda install -c conda-forge redis-server) and put it on PATH"
log = logging.getLogger("cosmos_exp")


class LaunchError(RuntimeError):
    """cosmos-rl could not be started, or it failed."""


def launch_argv(cfg: Config, run_dir: Path) -> List[str]:
    # The launcher found on our PATH (the one checked): the roles' PATH starts with another bin/ (role_env).
    run_dir = Path(run_dir)
    exe = str(cfg.backend.executable)
    return [shutil.which(exe) or exe, "--config", str(run_dir / TOML_NAME), "--log-dir", str(run_dir / LOG_DIR),
            "--port", str(cfg.backend.controller_port), str(ENTRY_SCRIPT), RUN_DIR_FLAG, str(run_dir)]


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


def preflight(cfg: Config, env: Optional[Dict[str, str]] = None) -> List[Problem]:
    """What stops a launch on this machine, as (config key, problem, what to do); empty when ready. Tools are
    looked up on the PATH the roles get (cosmos-rl's bin/ first), modules imported by the roles' `python`."""
    env = dict(os.environ if env is None else env)
    problems: List[Problem] = []
    exe = str(cfg.backend.executable)
    found_exe = shutil.which(exe, path=env.get("PATH"))
    own_env = "install cosmos-rl==0.4.7 in its own environment (it pins transformers<5) and put its bin/ on " \
              "PATH, or set backend.executable=/path/to/that/env/bin/cosmos-rl"
    roles = roles_env(cfg, env)
    if found_exe is None:
        problems.append(("backend.executable", f"the cosmos-rl launcher {exe!r} is not on PATH", own_env))
    elif launcher_bin_dir(exe, env).resolve() == Path(sys.prefix).resolve() / "bin":
        # install.sh --test puts cosmos-rl here without its dependencies, only to validate TOMLs.
        problems.append(("backend.executable", f"{found_exe} is cosmos-exp's own environment, where cosmos-rl is "
                         "installed for TOML validation only (its transformers<5 stack is missing)", own_env))
    else:
        problems += missing_modules(cfg, roles)
    for tool, why in (("redis-server", "cosmos-rl's controller starts one"),
                      ("redis-cli", "cosmos-rl's controller stops its redis-server with it")):
        if shutil.which(tool, path=roles.get("PATH")) is None:
            problems.append(("backend.name", f"{tool} is not on PATH; {why} (status 127 without it)", REDIS_HINT))
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


def preflight_error(problems: List[Problem]) -> ConfigError:
    """All of the preflight's problems as one error, one line each (the first names the error's key)."""
    err = ConfigError(*problems[0])
    err.args = ("\n".join(str(ConfigError(*p)) for p in problems),)
    return err


def run_launcher(argv: List[str], run_dir: Path, env: Optional[Dict[str, str]] = None,
                 every: Optional[Callable[[], object]] = None, every_s: float = 30.0,
                 grace_s: float = STOP_GRACE_S) -> int:
    """Run cosmos-rl to the end, passing on stop signals (runtime/signals.py); its exit status. `every` is
    called every `every_s` seconds while it runs (to publish checkpoints as they appear).

    It leads a session of its own, so a signal meant for the run reaches it once, through us. SIGUSR1 goes to
    the launcher alone: it hands that one to the policy, which checkpoints and exits. It handles no other
    signal, and its controller, torchrun ranks and their workers live in its process group: SIGTERM and SIGINT
    go to the whole group. Whatever of the group outlives the launcher (a failure, a stop, a launcher that left
    children behind) is stopped too, given grace_s to exit, so nothing keeps holding the GPUs."""
    proc: Optional[subprocess.Popen] = None

    def send(sig: int) -> None:
        if proc is None:
            return
        if sig == signal.SIGUSR1:
            if proc.poll() is None:
                proc.send_signal(sig)
        else:
            signal_group(proc, sig)

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
            if proc is not None:
                stop_group(proc, grace_s)
    if received:
        raise TrainingInterrupted(f"stopped by {names(received)} (passed on to cosmos-rl, exit status {code})")
    return code
