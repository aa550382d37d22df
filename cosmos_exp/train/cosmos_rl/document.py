"""The cosmos-rl TOML of one run: rendered from our config (render.py), checked key by key against the 0.4.7
schema (schema.py) and by cosmos-rl's own pydantic model where it is importable (pydantic_check.py), written
atomically. Every problem is a ConfigError naming our key."""

from pathlib import Path
from typing import Any, Dict, Tuple

from cosmos_exp.config import Config, ConfigError
from cosmos_exp.repro.atomic import write_text_atomic
from cosmos_exp.train.cosmos_rl import pydantic_check, render, schema, toml_io
from cosmos_exp.train.cosmos_rl.launch import ENTRY_SCRIPT, shell_unsafe

PLACEHOLDER_RUN_DIR = Path("<run_dir>")


def check_shell_safe(cfg: Config, run_dir: Path) -> None:
    """cosmos-rl joins its script arguments into shell commands without quoting: the run directory (or, in
    a dry run, the parts it is made of) and the entry script's path must need no quoting."""
    parts = [("name", str(cfg.name)), ("paths.runs_dir", str(Path(str(cfg.paths.runs_dir)).absolute())),
             ("backend.name", str(ENTRY_SCRIPT))]
    if run_dir != PLACEHOLDER_RUN_DIR:
        parts.append(("paths.runs_dir", str(run_dir)))
    for key, value in parts:
        if shell_unsafe(["", value]):
            raise ConfigError(key, f"cosmos-rl passes its script arguments through a shell without quoting; "
                              f"{value!r} has a space or shell character",
                              "use letters, digits and . _ - / + @ % : = , in run names and paths")


def validated_document(cfg: Config, run_dir: Path) -> Tuple[Dict[str, Any], str]:
    """The rendered TOML document after both checks, and what the pydantic check said."""
    doc = render.render(cfg, run_dir)
    schema.check_document(doc)
    # What cosmos-rl reads is the TOML text: validate the round-tripped document, not our dict.
    parsed = toml_io.round_trip(doc)
    mode = str(cfg.backend.pydantic_check)
    if mode == "never":
        return parsed, "cosmos-rl pydantic validation: off (backend.pydantic_check=never)"
    if pydantic_check.load_config_class() is None:
        if mode == "always":
            raise ConfigError("backend.pydantic_check", "cosmos-rl is not importable here, so its own validation "
                              "cannot run", "pip install --no-deps cosmos-rl==0.4.7 (needs only pydantic), "
                              "or backend.pydantic_check=auto")
        return parsed, "cosmos-rl pydantic validation: skipped (cosmos-rl not installed here)"
    problem = pydantic_check.validate(parsed)
    if problem is not None:
        key, message = problem
        raise ConfigError(f"cosmos_rl.{key}" if key else "cosmos_rl", f"cosmos-rl 0.4.7 rejects the rendered TOML: "
                          f"{message}", "fix the config value it comes from, or backend.toml_overrides")
    return parsed, "cosmos-rl pydantic validation: passed"


def toml_text(doc: Dict[str, Any]) -> str:
    """The file's text: what cosmos-rl reads, and what a dry run shows."""
    return "# Rendered by cosmos-exp from resolved.yaml; edit the config, not this file.\n" + toml_io.dumps(doc)


def write_toml(cfg: Config, run_dir: Path) -> Tuple[Path, Dict[str, Any]]:
    """Render, validate and atomically write <run_dir>/cosmos_rl.toml; returns its path and document."""
    doc, _ = validated_document(cfg, run_dir)
    path = Path(run_dir) / render.TOML_NAME
    write_text_atomic(path, toml_text(doc))
    return path, doc
