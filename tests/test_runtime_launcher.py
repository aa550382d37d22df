"""runtime/launcher.py on real processes: rank variables, policies, logs, signals, and stopping whole groups."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cosmos_exp.runtime.launcher import (FAIL_FAST, RUN_TO_END, LaunchInterrupted, RanksFailed, launch, rank_env)
from cosmos_exp.runtime.topology import topology
from cosmos_exp.worker import main as worker_main, start_ranks

from _processes import live as _live

HEADER = "import os, sys, time, signal, subprocess\nr = int(os.environ['RANK'])\nd = sys.argv[1]\n"


def _script(tmp_path: Path, body: str) -> list:
    path = tmp_path / "rank.py"
    path.write_text(HEADER + body)
    return [sys.executable, str(path), str(tmp_path)]


def _wait_for(paths, limit_s: float = 60.0) -> None:
    deadline = time.monotonic() + limit_s
    while not all(p.exists() for p in paths):
        assert time.monotonic() < deadline, f"never appeared: {[str(p) for p in paths if not p.exists()]}"
        time.sleep(0.02)


def _group(pgid: int) -> list:
    """Live processes of a process group."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(stat.parent.name))
    return members


def _gone(pids, limit_s: float = 10.0) -> bool:
    """SIGKILL is delivered at once but a process takes a moment to exit: wait a bounded while."""
    deadline = time.monotonic() + limit_s
    while any(_live(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not any(_live(p) for p in pids)


def test_every_rank_gets_torchrun_variables_and_knows_it_is_ours(tmp_path):
    argv = _script(tmp_path, "from cosmos_exp.runtime.topology import topology\n"
                             "t = topology()\n"
                             "open(f'{d}/r{r}', 'w').write(f\"{t.launched} {t.rank} {t.world_size} {t.in_launch} \""
                             " + os.environ['LOCAL_WORLD_SIZE'] + ' ' + os.environ['MASTER_PORT'])\n")
    results = launch(argv, 3, tmp_path / "logs", master_port=29555, poll_s=0.05)
    assert [r.returncode for r in results] == [0, 0, 0]
    assert [(tmp_path / f"r{r}").read_text() for r in range(3)] == [f"ours {r} 3 True 3 29555" for r in range(3)]


def test_one_device_per_rank_from_the_visible_ones():
    base = {"CUDA_VISIBLE_DEVICES": "4,5"}
    assert [rank_env(r, 3, base, one_device_each=True)["CUDA_VISIBLE_DEVICES"] for r in range(3)] == ["4", "5", "4"]
    assert rank_env(1, 2, {}, one_device_each=True)["CUDA_VISIBLE_DEVICES"] == "1"
    assert rank_env(1, 2, base)["CUDA_VISIBLE_DEVICES"] == "4,5"  # training ranks pick cuda:LOCAL_RANK themselves
    assert "MASTER_PORT" not in rank_env(0, 2, {}) and topology(rank_env(1, 2, {})).launched == "ours"


def test_fail_fast_stops_the_others_and_quotes_the_failure(tmp_path):
    # rank 1 fails at once; rank 0 would sleep ten minutes and must be stopped.
    argv = _script(tmp_path, "open(f'{d}/pid{r}', 'w').write(str(os.getpid()))\n"
                             "print('rank', r, 'going down', flush=True)\n"
                             "sys.exit(3) if r == 1 else time.sleep(600)\n")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "sft_rank1.log").write_text("an earlier run's words\n")  # appended to, not quoted
    with pytest.raises(RanksFailed, match=r"rank 1 exited with status 3; see .*sft_rank1.log") as info:
        launch(argv, 2, tmp_path / "logs", name="sft", policy=FAIL_FAST, console_rank0=True, poll_s=0.05, grace_s=5)
    message = str(info.value)
    assert message.startswith("1 of 2 sft ranks failed (stopped the rest: rank 0)")
    assert "rank 1 going down" in message and "earlier run" not in message
    assert [r.rank for r in info.value.failed] == [1]
    assert not _live(int((tmp_path / "pid0").read_text()))  # stopped and reaped, not left sleeping
    assert not (tmp_path / "logs" / "sft_rank0.log").exists()  # rank 0 wrote to the console
    assert "an earlier run's words\nrank 1 going down" in (tmp_path / "logs" / "sft_rank1.log").read_text()


def test_run_to_end_keeps_going_and_reports_every_failure(tmp_path):
    # ranks 1 and 2 fail; rank 0 finishes its work only after rank 1 has failed, and must not be stopped.
    argv = _script(tmp_path, "if r == 0:\n"
                             "    while not os.path.exists(f'{d}/failing1'): time.sleep(0.02)\n"
                             "    time.sleep(0.5); open(f'{d}/done0', 'w').close(); print('rank 0 fine')\n"
                             "else:\n"
                             "    open(f'{d}/failing{r}', 'w').close()\n"
                             "    raise RuntimeError(f'video shard {r} exploded on item abc')\n")
    with pytest.raises(RanksFailed) as info:
        launch(argv, 3, tmp_path / "logs", name="caption", policy=RUN_TO_END, poll_s=0.05)
    message = str(info.value)
    assert (tmp_path / "done0").exists()
    assert message.startswith("2 of 3 caption ranks failed\n") and "stopped" not in message
    for r in (1, 2):
        assert f"rank {r} exited with status 1; see {tmp_path / 'logs' / f'caption_rank{r}.log'}" in message
        assert f"video shard {r} exploded on item abc" in message
    assert "rank 0" not in message
    assert "rank 0 fine" in (tmp_path / "logs" / "caption_rank0.log").read_text()


def _send_when_ready(tmp_path: Path, n: int, sig: int) -> threading.Thread:
    """Send sig to this process (the launcher) once every rank has installed its handlers."""
    def send():
        _wait_for([tmp_path / f"ready{r}" for r in range(n)])
        os.kill(os.getpid(), sig)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("sent, received", [(signal.SIGUSR1, "SIGUSR1"), (signal.SIGUSR2, "SIGUSR1"),
                                            (signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT")])
def test_a_stop_signal_reaches_every_rank(tmp_path, sent, received):
    """Ranks lead their own sessions, so only what we pass on reaches them; SIGUSR2 arrives as SIGUSR1."""
    argv = _script(tmp_path, "def stop(signum, frame):\n"
                             "    open(f'{d}/got{r}', 'w').write(signal.Signals(signum).name); sys.exit(0)\n"
                             "for s in (signal.SIGUSR1, signal.SIGTERM, signal.SIGINT):\n"
                             "    signal.signal(s, stop)\n"
                             "open(f'{d}/ready{r}', 'w').close()\n"
                             "time.sleep(600)\n")
    thread = _send_when_ready(tmp_path, 3, sent)
    if sent == signal.SIGINT:  # this process's own meaning is kept too: a Ctrl-C interrupts the launcher
        # Python's own Ctrl-C handler, as a cosmos-exp process has it (an earlier test of this pytest process may
        # have left another one installed).
        before = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            with pytest.raises(KeyboardInterrupt):
                launch(argv, 3, tmp_path / "logs", poll_s=0.05, grace_s=5)
        finally:
            signal.signal(signal.SIGINT, before)
    else:  # the ranks saved and exited 0: the work is complete
        assert [r.returncode for r in launch(argv, 3, tmp_path / "logs", poll_s=0.05)] == [0, 0, 0]
    thread.join()
    _wait_for([tmp_path / f"got{r}" for r in range(3)], limit_s=10)
    assert [(tmp_path / f"got{r}").read_text() for r in range(3)] == [received] * 3
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL  # handlers restored


def test_ranks_ended_by_a_passed_on_signal_interrupt_the_launch(tmp_path):
    argv = _script(tmp_path, "open(f'{d}/ready{r}', 'w').close()\ntime.sleep(600)\n")
    thread = _send_when_ready(tmp_path, 2, signal.SIGTERM)
    with pytest.raises(LaunchInterrupted, match=r"stopped by SIGTERM .*rank \d exited with status -15 \(SIGTERM\)"):
        launch(argv, 2, tmp_path / "logs", policy=RUN_TO_END, poll_s=0.05)
    thread.join()


def test_submitits_requeue_on_sigusr2_waits_for_the_ranks_checkpoint(tmp_path):
    """Under submitit, SIGUSR2's handler requeues the job and exits: it runs only once every rank has saved."""
    argv = _script(tmp_path, "def save(signum, frame):\n"
                             "    time.sleep(0.3); open(f'{d}/saved{r}', 'w').close(); sys.exit(130)\n"
                             "signal.signal(signal.SIGUSR1, save)\n"
                             "open(f'{d}/ready{r}', 'w').close()\n"
                             "time.sleep(600)\n")
    seen = []

    def submitit_requeue(signum, frame):
        seen.append(sorted(p.name for p in tmp_path.glob("saved*")))
        raise SystemExit(-1)

    before = signal.signal(signal.SIGUSR2, submitit_requeue)
    try:
        thread = _send_when_ready(tmp_path, 2, signal.SIGUSR2)
        with pytest.raises(LaunchInterrupted, match=r"stopped by SIGUSR2 .*rank \d exited with status 130") as err:
            launch(argv, 2, tmp_path / "logs", poll_s=0.05)
        thread.join()
    finally:
        signal.signal(signal.SIGUSR2, before)
    assert seen == [["saved0", "saved1"]]  # called once, after both checkpoints
    assert isinstance(err.value.__cause__, SystemExit)


@pytest.mark.parametrize("ignore_term", [False, True], ids=["terminates", "ignores-sigterm"])
def test_stopping_a_rank_stops_what_it_started(tmp_path, ignore_term):
    """A rank's child lives in the rank's process group: stopping the rank kills the group, not just the pid;
    one that ignores SIGTERM is killed after the grace period."""
    body = ("if r == 0:\n"
            + ("    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" if ignore_term else "")
            + "    child = subprocess.Popen(['sleep', '600'])\n"
              "    open(f'{d}/child', 'w').write(str(child.pid))\n"
              "    open(f'{d}/pid0', 'w').write(str(os.getpid()))\n"
              "    time.sleep(600)\n"
              "while not os.path.exists(f'{d}/child'): time.sleep(0.02)\n"
              "sys.exit(5)\n")
    with pytest.raises(RanksFailed, match="rank 1 exited with status 5"):
        launch(_script(tmp_path, body), 2, tmp_path / "logs", poll_s=0.05, grace_s=1)
    rank0, child = int((tmp_path / "pid0").read_text()), int((tmp_path / "child").read_text())
    assert _gone([rank0, child])
    assert _group(rank0) == []


def test_a_killed_launcher_takes_its_ranks_with_it(tmp_path):
    """SIGKILL cannot be passed on: the ranks die with the launcher (PR_SET_PDEATHSIG), not orphaned."""
    argv = _script(tmp_path, "open(f'{d}/pid{r}', 'w').write(str(os.getpid()))\ntime.sleep(600)\n")
    driver = tmp_path / "driver.py"
    driver.write_text("import sys\nfrom cosmos_exp.runtime.launcher import launch\n"
                      f"launch({argv!r}, 2, {str(tmp_path / 'logs')!r})\n")
    proc = subprocess.Popen([sys.executable, str(driver)])
    try:
        _wait_for([tmp_path / "pid0", tmp_path / "pid1"])
    finally:
        proc.kill()
        proc.wait()
    assert _gone([int((tmp_path / f"pid{r}").read_text()) for r in range(2)])


def test_worker_entry_usage_and_missing_config(tmp_path, capsys):
    assert worker_main([str(tmp_path)]) == 2 and worker_main([str(tmp_path), "judge"]) == 2
    assert worker_main([str(tmp_path), "sft", "extra"]) == 2
    assert "usage: python -m cosmos_exp.worker" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="resolved.yaml is missing"):
        start_ranks(tmp_path, "caption", 2)
