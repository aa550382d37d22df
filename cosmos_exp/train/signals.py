"""SIGTERM / SIGUSR1 / SIGUSR2 ask the loop to checkpoint and stop.

The handler only records the request; the loop checks it between optimiser steps, agrees on it across ranks,
saves, and raises TrainingInterrupted. SIGUSR2 is the pre-timeout/preemption signal of submitit's SLURM jobs
(hydra/launcher=slurm): submitit's own handler for it requeues the job and exits, so it must not run before the
checkpoint is written. The loop holds it back and, once every rank has saved, hands the signal to it
(requeue_after_checkpoint): the requeued job resumes from that checkpoint in the same run directory.
"""

import signal
from typing import Callable, Dict, Optional

from cosmos_exp.runtime.signals import REQUEUE_SIGNAL, STOP_SIGNALS


class TrainingInterrupted(KeyboardInterrupt):
    """Raised after the checkpoint written on a stop signal (run.json records 'interrupted')."""


class StopRequest:
    def __init__(self) -> None:
        self.signum: Optional[int] = None
        self.requeue_requested = False  # the pre-timeout signal came (submitit requeues on it)
        self._previous: Dict[int, object] = {}

    def install(self) -> "StopRequest":
        for sig in STOP_SIGNALS + (REQUEUE_SIGNAL,):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum, frame) -> None:  # noqa: ARG002 (signal API)
        if self.signum is None or signum == REQUEUE_SIGNAL:
            self.signum = signum
        self.requeue_requested |= signum == REQUEUE_SIGNAL

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""

    def requeue_handler(self) -> Optional[Callable]:
        """The Python handler this process had for SIGUSR2 before the loop (submitit's), if any."""
        before = self._previous.get(REQUEUE_SIGNAL)
        return before if callable(before) else None

    def requeue_after_checkpoint(self) -> bool:
        """Give the pre-timeout signal to the handler that was there before us, now that the checkpoint is on
        disk: submitit's requeues the job (on SLURM task 0; on the other tasks it does nothing) and exits with
        SystemExit, which becomes TrainingInterrupted here so run.json says 'interrupted'. False: no such
        handler (not a submitit job); the caller stops as for SIGUSR1."""
        handler = self.requeue_handler()
        if handler is None:
            return False
        self.restore()  # a second signal during the requeue reaches submitit, not a loop that has ended
        try:
            handler(REQUEUE_SIGNAL, None)
        except SystemExit as done:
            raise TrainingInterrupted("checkpoint written; submitit requeued the job (it resumes from that "
                                      "checkpoint in the same run directory)") from done
        return True
