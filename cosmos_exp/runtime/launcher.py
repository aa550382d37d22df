"""The local launcher: start N ranks of one command on this node, pass stop signals on, fail loudly.

Each rank gets torchrun's variables (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, and MASTER_ADDR /
MASTER_PORT when a port is given), optionally one GPU of ours (CUDA_VISIBLE_DEVICES), and leads its own
process group (processes.py), so stopping a rank stops what it started. Two policies:

    fail_fast    the first rank to fail stops the others (training: the rest would wait on it forever)
    run_to_end   every rank finishes its own work (captioning: finished items are kept; a rerun does the rest)

Either way a failure raises RanksFailed, naming each failed rank, its exit status and the tail of its log.
The cookbook started 8 caption shards and printed "Processed 0 videos" with exit 0 when they all crashed.
"""

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

from cosmos_exp.runtime.processes import spawn, stop_all, wait_all
from cosmos_exp.runtime.signals import REQUEUE_SIGNAL, forwarding, names
from cosmos_exp.runtime.topology import LAUNCHER_ENV

FAIL_FAST, RUN_TO_END = "fail_fast", "run_to_end"
GRACE_S = 30.0  # how long a stopped rank may take (a training rank checkpoints on SIGTERM)


@dataclass
class RankResult:
    rank: int
    returncode: int
    log: Optional[Path]  # None: the rank wrote to our console
    log_start: int = 0  # where this launch's part of the (appended) log begins

    def status(self) -> str:
        if self.returncode < 0:
            return f"status {self.returncode} ({signal.Signals(-self.returncode).name})"
        return f"status {self.returncode}"

    def tail(self, max_chars: int = 2000) -> str:
        if self.log is None:
            return ""
        try:
            with open(self.log, "rb") as f:
                f.seek(self.log_start)
                text = f.read().decode("utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return text[-max_chars:].strip()

    def describe(self) -> str:
        where = "the console above" if self.log is None else str(self.log)
        tail = self.tail()
        return f"rank {self.rank} exited with {self.status()}; see {where}" + (f":\n{tail}" if tail else "")


class RanksFailed(RuntimeError):
    """One or more ranks exited non-zero; the message quotes each one's status and log tail."""

    def __init__(self, name: str, nproc: int, failed: List[RankResult], stopped: List[int]) -> None:
        self.failed, self.stopped = failed, stopped
        head = f"{len(failed)} of {nproc} {name} ranks failed"
        if stopped:
            head += f" (stopped the rest: rank{'s' if len(stopped) > 1 else ''} {', '.join(map(str, stopped))})"
        super().__init__(head + "\n" + "\n\n".join(r.describe() for r in failed))


class LaunchInterrupted(KeyboardInterrupt):
    """A stop signal reached the launcher, was passed to the ranks, and they did not all finish."""

    def __init__(self, signums: List[int], failed: List[RankResult]) -> None:
        self.signums, self.failed = signums, failed
        super().__init__(f"stopped by {names(signums)} (passed on to every rank); "
                         + "; ".join(f"rank {r.rank} exited with {r.status()}" for r in failed))


def rank_env(rank: int, nproc: int, base: Mapping[str, str], master_port: Optional[int] = None,
             one_device_each: bool = False) -> Dict[str, str]:
    env = dict(base)
    env.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(nproc), LOCAL_WORLD_SIZE=str(nproc),
               GROUP_RANK="0", **{LAUNCHER_ENV: "1"})
    if master_port is not None:
        env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(master_port))
    if one_device_each:
        device = _device_for(rank, base)
        if device is not None:
            env["CUDA_VISIBLE_DEVICES"] = device
    return env


def _device_for(local_rank: int, env: Mapping[str, str]) -> Optional[str]:
    """One GPU per rank, chosen from the parent's visible devices when it restricts them."""
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible:
        devices = [d for d in visible.split(",") if d.strip()]
        return devices[local_rank % len(devices)] if devices else None
    return str(local_rank)


def launch(argv: Sequence[str], nproc: int, log_dir: Path, name: str = "worker", policy: str = FAIL_FAST,
           console_rank0: bool = False, master_port: Optional[int] = None, one_device_each: bool = False,
           extra_env: Optional[Mapping[str, str]] = None, poll_s: float = 0.2,
           grace_s: float = GRACE_S) -> List[RankResult]:
    """Run `argv` once per rank; each logs to log_dir/<name>_rank<N>.log (appended), rank 0 to our console
    with `console_rank0`. Returns every rank's result; raises RanksFailed, or LaunchInterrupted when a stop
    signal we passed on ended them. Ranks never outlive this call."""
    if policy not in (FAIL_FAST, RUN_TO_END):
        raise ValueError(f"unknown launch policy {policy!r} (use {FAIL_FAST} or {RUN_TO_END})")
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    base = {**os.environ, **(extra_env or {})}
    procs, results, handles = [], [], []

    def send(sig: int) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(sig)

    # SIGUSR2 reaches the ranks at once (as SIGUSR1: they save); submitit's requeue of the job waits for them.
    with forwarding(send, hold=(REQUEUE_SIGNAL,)) as received:
        try:
            for rank in range(nproc):
                log, start, out = None, 0, None
                if not (console_rank0 and rank == 0):
                    log = log_dir / f"{name}_rank{rank}.log"
                    start = log.stat().st_size if log.exists() else 0
                    out = open(log, "ab")
                    handles.append(out)
                env = rank_env(rank, nproc, base, master_port, one_device_each)
                procs.append(spawn(argv, env, stdout=out, stderr=None if out is None else out))
                results.append(RankResult(rank, 0, log, start))
            failed = _wait(procs, policy, poll_s)
            stopped = [rank for rank, proc in enumerate(procs) if proc.poll() is None]
        finally:
            if received:  # the ranks got the stop signal we passed on: they exit (after a checkpoint) by themselves
                wait_all(procs, grace_s)
            stop_all(procs, grace_s)  # the others after a failure, what ranks left behind, or all if we fail
            for handle in handles:
                handle.close()
    for result, proc in zip(results, procs):
        result.returncode = proc.returncode
    failures = [results[i] for i in failed]
    if received.held:  # the ranks have saved and ended: now submitit may requeue the job (it exits)
        try:
            received.hand_back()
        except SystemExit as requeued:
            raise LaunchInterrupted(received, failures) from requeued
    if failed:
        if received:
            raise LaunchInterrupted(received, failures)
        raise RanksFailed(name, nproc, failures, stopped)
    return results


def _wait(procs: List, policy: str, poll_s: float) -> List[int]:
    """Indices of the ranks that failed: the first to fail (fail_fast), or all of them once all ended."""
    while True:
        codes = [p.poll() for p in procs]
        failed = [i for i, code in enumerate(codes) if code not in (None, 0)]
        if (failed and policy == FAIL_FAST) or all(code is not None for code in codes):
            return failed
        time.sleep(poll_s)
