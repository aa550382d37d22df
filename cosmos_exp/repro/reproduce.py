"""cosmos-exp-reproduce <run_dir>: run a logged run again, from its saved config, into a new directory.

The saved `.hydra/config.yaml` is the fully composed config (every override already applied), so it is
replayed as the primary config: later edits to the config tree cannot change what is reproduced. The child runs
in the original working directory so relative paths mean what they meant.
"""

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

from cosmos_exp.repro.metadata import code_state
from cosmos_exp.repro.record import REPRODUCE_ENV
from cosmos_exp.rundir import HYDRA_DIR, RESOLVED_YAML, RUN_JSON

REQUIRED_FILES = (f"{HYDRA_DIR}/config.yaml", f"{HYDRA_DIR}/overrides.yaml", f"{HYDRA_DIR}/hydra.yaml", RUN_JSON, RESOLVED_YAML)


class IncompleteRunDir(RuntimeError):
    pass


def check_complete(run_dir: Path) -> dict:
    missing = [f for f in REQUIRED_FILES if not (run_dir / f).is_file()]
    if missing:
        raise IncompleteRunDir(
            f"{run_dir} is not a complete run directory: missing {', '.join(missing)}. "
            "Only runs started by cosmos-exp (not dry runs, not runs that failed validation) can be reproduced.")
    try:
        return json.loads((run_dir / RUN_JSON).read_text())
    except ValueError as err:
        raise IncompleteRunDir(f"{run_dir / RUN_JSON} is not valid JSON ({err}); cannot reproduce") from None


def recorded_code(info: dict) -> dict:
    """run.json's code section; runs recorded before installed wheels were told apart have a "git" one."""
    if "code" in info:
        return info["code"] or {}
    old = info.get("git") or {}
    return {"origin": "source checkout", "commit": old.get("sha"), "dirty": old.get("dirty"),
            "diff_sha256": old.get("diff_sha256")}


def _describe(code: dict) -> str:
    built = " (the commit its wheel was built from)" if code.get("origin") == "installed package" else ""
    return f"{code.get('commit')}{built}, version {code.get('version', 'unknown')}"


def revision_warnings(info: dict, now: Optional[dict] = None) -> List[str]:
    """What may make the replay differ: another code revision, or uncommitted changes then or now."""
    then, now = recorded_code(info), code_state() if now is None else now
    here = "this checkout" if now.get("origin") == "source checkout" else "this installed package"
    warnings = []
    if then.get("commit") != now.get("commit") or then.get("version", now.get("version")) != now.get("version"):
        warnings.append(f"code revision differs: the run used {_describe(then)}; {here} is {_describe(now)}")
    elif now.get("commit") is None:
        warnings.append(f"the code revision is unknown ({now.get('note')}); it cannot be compared with the run's")
    if then.get("dirty"):
        warnings.append(f"the run's code had uncommitted changes (diff sha256 {then.get('diff_sha256')}); "
                        "they cannot be restored")
    if now.get("dirty"):
        warnings.append(f"{here} has uncommitted changes" if here == "this checkout" else
                        f"{here} was built from a tree with uncommitted changes")
    return warnings


def reproduce_argv(run_dir: Path, new_dir: Path) -> List[str]:
    return [sys.executable, "-m", "cosmos_exp.run",
            "--config-path", str((run_dir / HYDRA_DIR).resolve()), "--config-name", "config",
            f"hydra.run.dir={new_dir}",
            f"hydra.job_logging.handlers.file.filename={new_dir}/log.txt"]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="cosmos-exp-reproduce", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a run directory written by cosmos-exp")
    parser.add_argument("--out", type=Path, default=None,
                        help="new run directory (default: <run_dir>_repro_<time> beside the original)")
    args = parser.parse_args(argv)

    run_dir = args.run_dir.resolve()
    try:
        info = check_complete(run_dir)
    except IncompleteRunDir as err:
        print(f"cosmos-exp-reproduce: {err}", file=sys.stderr)
        return 2
    for warning in revision_warnings(info):
        print(f"cosmos-exp-reproduce: WARNING: {warning}", file=sys.stderr)
    if info.get("status") != "succeeded":
        print(f"cosmos-exp-reproduce: note: the original run ended with status {info.get('status')!r}", file=sys.stderr)

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    new_dir = (args.out or run_dir.with_name(f"{run_dir.name}_repro_{stamp}")).resolve()
    env = dict(os.environ, **{REPRODUCE_ENV: str(run_dir)})
    cwd = info.get("cwd") if info.get("cwd") and Path(info["cwd"]).is_dir() else None
    print(f"cosmos-exp-reproduce: {run_dir} -> {new_dir}")
    rc = subprocess.run(reproduce_argv(run_dir, new_dir), env=env, cwd=cwd).returncode
    if rc == 0:
        same = (run_dir / RESOLVED_YAML).read_text() == (new_dir / RESOLVED_YAML).read_text()
        print("cosmos-exp-reproduce: resolved config " + ("identical" if same else "DIFFERS") + f"; results in {new_dir}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
