"""Start one worker process per local device and fail loudly when any of them fails.

The cookbook started 8 shards and printed "Processed 0 videos" with exit 0 when they all crashed;
here every worker's exit status is checked and the failing shard's own error text is raised.
"""

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence


class ShardFailed(RuntimeError):
    """One or more worker processes exited non-zero; the message holds each one's error tail."""


@dataclass
class WorkerResult:
    rank: int
    returncode: int
    log: Path

    def tail(self, max_chars: int = 2000) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return text[-max_chars:].strip()


def _device_for(local_rank: int, env: Mapping[str, str]) -> Optional[str]:
    """One GPU per worker, chosen from the parent's visible devices when it restricts them."""
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible:
        devices = [d for d in visible.split(",") if d.strip()]
        return devices[local_rank % len(devices)] if devices else None
    return str(local_rank)


def launch_workers(
    argv: Sequence[str],
    nproc: int,
    log_dir: Path,
    extra_env: Optional[Dict[str, str]] = None,
    poll_s: float = 0.2,
) -> List[WorkerResult]:
    """Run `argv` `nproc` times with RANK/WORLD_SIZE/LOCAL_RANK set; raise ShardFailed if any fails.

    Workers run to their end even when a sibling fails, since their finished items are kept and a
    rerun only redoes what is missing.
    """
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    base = dict(os.environ)
    base.update(extra_env or {})
    procs = []
    for rank in range(nproc):
        env = dict(base)
        env.update({"RANK": str(rank), "WORLD_SIZE": str(nproc), "LOCAL_RANK": str(rank),
                    "LOCAL_WORLD_SIZE": str(nproc)})
        device = _device_for(rank, base)
        if device is not None:
            env["CUDA_VISIBLE_DEVICES"] = device
        log = log_dir / f"caption_rank{rank}.log"
        handle = open(log, "w", encoding="utf-8")
        proc = subprocess.Popen(list(argv), env=env, stdout=handle, stderr=subprocess.STDOUT)
        procs.append((rank, proc, handle, log))

    results: List[WorkerResult] = []
    try:
        pending = list(procs)
        while pending:
            still = []
            for rank, proc, handle, log in pending:
                if proc.poll() is None:
                    still.append((rank, proc, handle, log))
                else:
                    handle.close()
                    results.append(WorkerResult(rank, proc.returncode, log))
            pending = still
            if pending:
                time.sleep(poll_s)
    except BaseException:
        # Interrupted parent (Ctrl-C, scheduler kill): take the workers down with it.
        for _, proc, handle, _ in procs:
            if proc.poll() is None:
                proc.terminate()
        for _, proc, handle, _ in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            handle.close()
        raise

    results.sort(key=lambda r: r.rank)
    failed = [r for r in results if r.returncode != 0]
    if failed:
        parts = [f"rank {r.rank} exited with status {r.returncode} (log {r.log}):\n{r.tail()}" for r in failed]
        raise ShardFailed(f"{len(failed)} of {nproc} caption shards failed\n" + "\n\n".join(parts))
    return results


def python_module_argv(module: str, *args: str) -> List[str]:
    return [sys.executable, "-m", module, *args]
