"""The signals that stop a run, and passing them on to the processes a launcher started.

SIGTERM / SIGUSR1 (SLURM's pre-timeout signal) ask a training rank to checkpoint and stop. A launcher also
passes on SIGINT (its ranks lead their own sessions, so a Ctrl-C on our console reaches only us) and
SIGUSR2 (the pre-timeout signal of hydra-submitit's SLURM jobs), sent on as SIGUSR1: the one ranks save on.
"""

import contextlib
import signal
from typing import Callable, Iterator, List

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
FORWARDED = STOP_SIGNALS + (signal.SIGINT, signal.SIGUSR2)
AS_SIGNAL = {signal.SIGUSR2: signal.SIGUSR1}


@contextlib.contextmanager
def forwarding(send: Callable[[int], None], chain: bool = True) -> Iterator[List[int]]:
    """While the block runs, each FORWARDED signal is recorded (in the list yielded) and passed to
    send(AS_SIGNAL.get(sig, sig)). With `chain`, a Python handler this process had for it runs next, so its
    own meaning is kept: a Ctrl-C still raises KeyboardInterrupt here, and under submitit SIGUSR2 still
    requeues the job. Handlers are restored on exit. Call from the main thread (Python's signal rule)."""
    received: List[int] = []
    previous = {}

    def handle(signum, frame):
        received.append(signum)
        send(AS_SIGNAL.get(signum, signum))
        before = previous.get(signum)
        if chain and callable(before):
            before(signum, frame)

    for sig in FORWARDED:
        previous[sig] = signal.signal(sig, handle)
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def names(signums: List[int]) -> str:
    return ", ".join(signal.Signals(s).name for s in signums)
