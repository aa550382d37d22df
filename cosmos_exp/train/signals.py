"""SIGTERM / SIGUSR1 (SLURM's pre-timeout signal) ask the loop to checkpoint and stop.

The handler only records the request; the loop checks it between optimiser steps, agrees on it
across ranks, saves, and raises TrainingInterrupted.
"""

import signal
from typing import Dict, Optional

from cosmos_exp.runtime.signals import STOP_SIGNALS


class TrainingInterrupted(KeyboardInterrupt):
    """Raised after the checkpoint written on a stop signal (run.json records 'interrupted')."""


class StopRequest:
    def __init__(self) -> None:
        self.signum: Optional[int] = None
        self._previous: Dict[int, object] = {}

    def install(self) -> "StopRequest":
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum, frame) -> None:  # noqa: ARG002 (signal API)
        self.signum = signum

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""
