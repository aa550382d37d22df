"""A started process and everything it starts, as one unit that can be stopped.

spawn() makes the process the leader of its own session (so of its own process group): whatever it starts
stays in that group, and stop_all() signals the group, not just the pid, so a rank's children go with it.
On Linux the process is also killed when the thread that spawned it dies, even by SIGKILL, which no handler
could forward: a rank outside our group would otherwise outlive a killed launcher.
"""

import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Callable, Dict, List, Optional, Sequence, Union

_PR_SET_PDEATHSIG = 1
KILL_WAIT_S = 10.0
Output = Union[None, int, IO]


def _die_with_parent() -> Optional[Callable[[], None]]:
    """preexec_fn for Popen: PR_SET_PDEATHSIG=SIGKILL (resolved here, before the fork)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))
        if os.getppid() != parent:  # the parent died before the setting took hold
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def spawn(argv: Sequence[str], env: Dict[str, str], stdout: Output = None, stderr: Output = None) -> subprocess.Popen:
    """Start argv as the leader of a new session, its stdin closed (a session of its own has no terminal)."""
    return subprocess.Popen(list(argv), env=env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                            start_new_session=True, preexec_fn=_die_with_parent())


def signal_group(proc: subprocess.Popen, sig: int) -> None:
    """Send sig to every process of proc's group (proc leads it: spawn() or start_new_session=True)."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):  # the group is gone
        pass


def wait_all(procs: Sequence[subprocess.Popen], timeout_s: float) -> None:
    """Up to timeout_s in all for the processes to exit by themselves."""
    deadline = time.monotonic() + timeout_s
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass


def stop_all(procs: Sequence[subprocess.Popen], grace_s: float) -> None:
    """SIGTERM to the groups whose leader still runs, up to grace_s for the leaders to exit, then SIGKILL to
    every group: what a leader left behind, or a leader that would not stop."""
    for proc in procs:
        if proc.poll() is None:
            signal_group(proc, signal.SIGTERM)
    wait_all(procs, grace_s)
    for proc in procs:
        signal_group(proc, signal.SIGKILL)
        proc.wait()


def group_members(pgid: int) -> List[int]:
    """The live processes of process group `pgid` (zombies left for an init that does not reap are not
    alive); read from /proc, or [pgid] while the group can still be signalled where there is no /proc."""
    proc_dir = Path("/proc")
    if not proc_dir.is_dir():
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [pgid]
    found = []
    for entry in proc_dir.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after the last ")"
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
            found.append(int(entry.name))
    return found


def stop_group(proc: subprocess.Popen, grace_s: float) -> None:
    """Stop proc (the leader of its own group) and every process of its group, including those that outlived
    it: SIGTERM to the group, up to grace_s for all of them to exit, then SIGKILL to whatever is left."""
    if proc.poll() is not None and not group_members(proc.pid):
        return
    signal_group(proc, signal.SIGTERM)
    _wait_group(proc, grace_s)
    signal_group(proc, signal.SIGKILL)
    _wait_group(proc, KILL_WAIT_S)  # a killed process is gone only once the kernel has run its exit
    proc.wait()


def _wait_group(proc: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while (proc.poll() is None or group_members(proc.pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
