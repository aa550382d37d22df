"""The run's record: one JSON file, rewritten as each part finishes (a run cut short keeps what it measured),
and one line per finished part in bench/RESULTS.md, with the machine and the versions."""

import datetime
import json
import os
import platform
import socket
from pathlib import Path
from typing import Any, Dict, List, Optional

SECTION = "GPU check (bench/gpu_check.sh)"
VERSIONS_IN_LINE = ("torch", "transformers", "deepspeed")


def machine(device: str) -> Dict[str, Any]:
    import torch

    out: Dict[str, Any] = {"host": socket.gethostname(), "cpus": os.cpu_count(), "platform": platform.platform(),
                           "python": platform.python_version(), "device": device}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        out.update(gpus=torch.cuda.device_count(), gpu_memory_gb=round(props.total_memory / 2**30, 1),
                   capability=f"{props.major}.{props.minor}", cuda=torch.version.cuda)
    return out


def versions() -> Dict[str, Any]:
    from cosmos_exp.repro.metadata import code_state, package_versions

    return {"packages": {k: v for k, v in package_versions().items() if v is not None}, "code": code_state()}


class Record:
    def __init__(self, path: Path, header: Dict[str, Any]) -> None:
        self.path = path
        self.data: Dict[str, Any] = {**header, "parts": {}}
        self.write()

    def add(self, part: str, result: Dict[str, Any]) -> None:
        self.data["parts"][part] = result
        self.write()

    def write(self) -> None:
        from cosmos_exp.repro.atomic import write_json_atomic

        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path, self.data)


def results_line(part_line: str, header: Dict[str, Any]) -> str:
    m, v = header["machine"], header["versions"]
    pkgs = ", ".join(f"{k} {v['packages'][k]}" for k in VERSIONS_IN_LINE if k in v["packages"])
    code = v["code"]
    rev = (code.get("commit") or "")[:10] + ("+dirty" if code.get("dirty") else "")
    return (f"- {datetime.date.today()} {header['mode']} on {m['device']} ({m['host']}, {m['cpus']} cpus; {pkgs}; "
            f"cosmos_exp {code.get('version')}{' ' + rev if rev else ''}): {part_line}")


def keep_logs(work: Path, out_dir: Path, keep_bytes: int = 256 * 1024) -> None:
    """Copy the tail of every child's log beside the record (on the lent machine only $OUT comes back; the
    work directory holds the multi-GB model)."""
    if out_dir.resolve() == work.resolve():
        return
    for log in sorted(work.glob("*.log")):
        data = log.read_bytes()[-keep_bytes:]
        (out_dir / f"gpu_check_{log.stem}.log").write_bytes(data)


def lines_of(record: Path) -> List[str]:
    """The RESULTS.md lines of the finished parts of a record (one-line error for a file that is not one)."""
    try:
        data = json.loads(Path(record).read_text(encoding="utf-8"))
        return [p["results_line"] for p in data["parts"].values() if p.get("status") == "ok"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise SystemExit(f"gpu_check: {record} is not a GPU-check record ({type(err).__name__}: {err})") from None


def record_line(line: str, results: Optional[Path]) -> None:
    if results is None:
        return
    from timing import record_result  # bench/timing.py

    record_result(SECTION, line, results)
