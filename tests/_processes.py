"""Whether a process still runs, read from /proc (tests that check nothing is left behind)."""

from pathlib import Path


def live(pid: int) -> bool:
    """Running (a zombie no one reaped yet is dead: this machine's PID 1 does not reap orphans)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")
