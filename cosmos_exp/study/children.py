"""A cosmos-exp run started by another (a study's runs, a train-then-evaluate trial's two steps): run it to its
end with its output in a log file, and turn its failure into the error it stopped with."""

import os
import re
from pathlib import Path
from typing import List, Tuple

from cosmos_exp.config import ConfigError, DataError

EXIT_CONFIG_ERROR = 2  # run.py's: a child that stopped on bad config or data
_CHILD_ERROR = re.compile(r"^cosmos-exp: (?:config error at '([^']*)': |data error: )(.*)$")


def run_child(argv: List[str], log_file: Path) -> Tuple[int, List[int]]:
    """(exit code, stop signals received) of one child run to its end, its output appended to log_file. Stop
    signals are passed on (a training run checkpoints and stops), and the child's process group never outlives
    this call."""
    from cosmos_exp.runtime.launcher import GRACE_S
    from cosmos_exp.runtime.processes import spawn, stop_group
    from cosmos_exp.runtime.signals import forwarding

    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as out:
        out.write(("\n$ " + " ".join(argv) + "\n").encode())
        out.flush()
        proc = spawn(argv, dict(os.environ), stdout=out, stderr=out)
        try:
            with forwarding(lambda sig: proc.send_signal(sig) if proc.poll() is None else None) as received:
                proc.wait()
        finally:
            stop_group(proc, GRACE_S)
    return proc.returncode, received


def child_failure(what: str, code: int, log_file: Path) -> Exception:
    """The child's own one-line error again (bad config or data), or a failure pointing at its log."""
    lines = log_file.read_text(encoding="utf-8", errors="replace").splitlines()
    where = f"{what}, log {log_file}"
    if code == EXIT_CONFIG_ERROR:
        for line in reversed(lines):
            m = _CHILD_ERROR.match(line)
            if m:
                return ConfigError(m.group(1), f"{m.group(2)} ({where})") if m.group(1) is not None else \
                    DataError(f"{m.group(2)} ({where})")
    tail = "\n".join(lines[-20:])
    return RuntimeError(f"{where}: exit code {code}; its last lines:\n{tail}")
