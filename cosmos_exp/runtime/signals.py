"""The signals that stop a run, and passing them on to the processes a launcher started.

SIGTERM / SIGUSR1 (SLURM's pre-timeout signal) ask a training rank to checkpoint and stop; so does SIGUSR2
(REQUEUE_SIGNAL: submitit's pre-timeout/preemption signal, on which it requeues the job; train/signals.py lets
submitit do that only after the checkpoint). A launcher also passes on SIGINT (its ranks lead their own
sessions, so a Ctrl-C on our console reaches only us) and SIGUSR2, sent on as SIGUSR1 (ranks it starts are
not submitit's tasks: the requeue is the launcher's process's to ask for).
"""

import contextlib
import signal
from typing import Callable, Iterator, List, Tuple

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
REQUEUE_SIGNAL = signal.SIGUSR2
FORWARDED = STOP_SIGNALS + (signal.SIGINT, signal.SIGUSR2)
AS_SIGNAL = {signal.SIGUSR2: signal.SIGUSR1}


class Received(list):
    """The signals a forwarding block received, in order; `held`: the earlier handlers it held back."""

    def __init__(self) -> None:
        super().__init__()
        self.held: List[Tuple[int, Callable]] = []

    def hand_back(self) -> None:
        """Run the held-back handlers now (submitit's requeue, once the ranks have written their checkpoint)."""
        held, self.held = self.held, []
        for signum, handler in held:
            handler(signum, None)


@contextlib.contextmanager
def forwarding(send: Callable[[int], None], chain: bool = True, hold: Tuple[int, ...] = ()) -> Iterator[Received]:
    """While the block runs, each FORWARDED signal is recorded (in the list yielded) and passed to
    send(AS_SIGNAL.get(sig, sig)). With `chain`, a Python handler this process had for it runs next, so its
    own meaning is kept: a Ctrl-C still raises KeyboardInterrupt here. For a signal in `hold` that handler is
    kept back instead, for the caller to run with received.hand_back() once the ranks are done: under submitit,
    SIGUSR2's handler requeues the job and exits, which must wait for their checkpoint. Handlers are restored
    on exit. Call from the main thread (Python's signal rule)."""
    received = Received()
    previous = {}

    def handle(signum, frame):
        received.append(signum)
        send(AS_SIGNAL.get(signum, signum))
        before = previous.get(signum)
        if not (chain and callable(before)):
            return
        if signum in hold:
            if all(held != signum for held, _ in received.held):
                received.held.append((signum, before))
        else:
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
