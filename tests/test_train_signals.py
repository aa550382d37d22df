"""The loop's stop signals in this process: SIGUSR2 is held back from submitit's handler until the checkpoint is
written, then handed to it (it requeues the job and exits); without such a handler it stops like SIGUSR1."""

import os
import signal

import pytest

from cosmos_exp.train.signals import StopRequest, TrainingInterrupted


class FakeSubmitit:
    """Stands in for submitit's SignalHandler.checkpoint_and_try_requeue: requeue, then sys.exit(-1)."""

    def __init__(self) -> None:
        self.calls = []

    def __call__(self, signum, frame):
        self.calls.append(signum)
        raise SystemExit(-1)


@pytest.fixture
def submitit_handler():
    fake = FakeSubmitit()
    before = signal.signal(signal.SIGUSR2, fake)
    yield fake
    signal.signal(signal.SIGUSR2, before)


def test_usr2_waits_for_the_checkpoint_then_goes_to_submitit(submitit_handler):
    stop = StopRequest().install()
    try:
        os.kill(os.getpid(), signal.SIGUSR2)
        assert stop.requested and stop.requeue_requested and stop.name == "SIGUSR2"
        assert submitit_handler.calls == []  # not yet: the loop saves first
        with pytest.raises(TrainingInterrupted, match="submitit requeued the job") as err:
            stop.requeue_after_checkpoint()
        assert isinstance(err.value.__cause__, SystemExit)
        assert submitit_handler.calls == [signal.SIGUSR2]
        assert signal.getsignal(signal.SIGUSR2) is submitit_handler  # restored before handing over
    finally:
        stop.restore()


def test_term_then_usr2_still_requeues_and_usr2_alone_without_submitit_just_stops(submitit_handler):
    stop = StopRequest().install()
    os.kill(os.getpid(), signal.SIGTERM)
    assert stop.requested and not stop.requeue_requested and stop.name == "SIGTERM"
    os.kill(os.getpid(), signal.SIGUSR2)
    assert stop.requeue_requested
    stop.restore()

    signal.signal(signal.SIGUSR2, signal.SIG_DFL)  # a process of its own: no submitit
    alone = StopRequest().install()
    try:
        os.kill(os.getpid(), signal.SIGUSR2)
        assert alone.requested and alone.requeue_handler() is None
        assert alone.requeue_after_checkpoint() is False
    finally:
        alone.restore()
    assert signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL
