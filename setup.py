"""Build hook (everything else is in pyproject.toml): a wheel records the commit it was built from.

An installed package has no checkout to ask, and whatever git repository happens to contain site-packages
says nothing about this code, so the build writes cosmos_exp/_build_info.json (commit, branch, dirty flag,
diff hash) into what it builds; cosmos_exp/repro/metadata.py puts it in run.json. An sdist carries the
record of the tree it was made from, so a wheel built from the sdist (python -m build) keeps it.
"""

import json
import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from cosmos_exp.repro.metadata import BUILD_INFO, git_state  # noqa: E402  (standard library only)

PACKAGE = "cosmos_exp"
RECORD_KEYS = ("commit", "branch", "dirty", "diff_sha256")


def build_record() -> dict:
    state = git_state(ROOT)  # only when ROOT is the top of a checkout, not inside some other repository
    if state["commit"] is not None:
        return {k: state[k] for k in RECORD_KEYS}
    carried = ROOT / PACKAGE / BUILD_INFO  # an unpacked sdist's record of the checkout it was made from
    if carried.is_file():
        return json.loads(carried.read_text(encoding="utf-8"))
    return {"commit": None, "dirty": None, "diff_sha256": None,
            "note": f"built from {ROOT}, which is neither a git checkout nor an sdist made from one"}


def write_record(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(build_record(), indent=2) + "\n", encoding="utf-8")


class BuildPyWithRecord(build_py):
    def run(self) -> None:
        editable = getattr(self, "editable_mode", False)  # an editable install runs the checkout itself
        if not editable:
            # build/lib is reused from one build to the next: start from the package as it is now, so a
            # module deleted from the tree cannot linger in the next wheel.
            shutil.rmtree(Path(self.build_lib) / PACKAGE, ignore_errors=True)
        super().run()
        if not editable:
            write_record(Path(self.build_lib) / PACKAGE / BUILD_INFO)


class SdistWithRecord(sdist):
    def make_release_tree(self, base_dir: str, files: list) -> None:
        super().make_release_tree(base_dir, files)
        write_record(Path(base_dir) / PACKAGE / BUILD_INFO)


setup(cmdclass={"build_py": BuildPyWithRecord, "sdist": SdistWithRecord})
