"""cosmos-rl's own validation of a TOML document, without its heavy package import.

`cosmos_rl/__init__.py` imports torch, transformers and the vision stack; its config module needs only
pydantic. We load that module alone: the parent packages are put in sys.modules as empty modules whose
__path__ points at the installed folders (so `cosmos_rl.utils.logging`, which the module imports, still
loads), and every cosmos_rl entry we added is taken out again afterwards, so a later real import of
cosmos_rl in this process is not affected.
"""

import copy
import contextlib
import importlib
import importlib.util
import logging
import sys
import types
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple

_PARENTS = ("cosmos_rl", "cosmos_rl.policy", "cosmos_rl.utils")
_CONFIG_MODULE = "cosmos_rl.policy.config"
_cached: Dict[str, Any] = {}


def cosmos_rl_dir() -> Optional[Path]:
    """The installed cosmos_rl package folder, found without importing it; None when not installed."""
    try:
        spec = importlib.util.find_spec("cosmos_rl")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def load_config_class() -> Optional[type]:
    """cosmos_rl.policy.config.Config, or None when cosmos-rl (or pydantic) is not installed."""
    if "Config" in _cached:
        return _cached["Config"]
    root = cosmos_rl_dir()
    if root is None or not (root / "policy" / "config" / "__init__.py").is_file():
        return None
    before = set(sys.modules)
    saved = {name: sys.modules[name] for name in _PARENTS if name in sys.modules}
    try:
        for name in _PARENTS:
            if name not in saved:
                stub = types.ModuleType(name)
                stub.__path__ = [str(root.joinpath(*name.split(".")[1:]))]
                sys.modules[name] = stub
        try:
            with warnings.catch_warnings():  # its Field(choices=...) calls warn on every pydantic 2
                warnings.simplefilter("ignore")
                module = importlib.import_module(_CONFIG_MODULE)
        except ImportError:
            return None
    finally:
        for name in set(sys.modules) - before:
            if name == "cosmos_rl" or name.startswith("cosmos_rl."):
                del sys.modules[name]
        sys.modules.update(saved)
    _cached["Config"] = module.Config
    return module.Config


@contextlib.contextmanager
def _quiet_cosmos_logger() -> Iterator[None]:
    # Its validators log INFO/WARNING lines about distillation on every call.
    logger = logging.getLogger("cosmos")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def validate(doc: Dict[str, Any]) -> Optional[Tuple[str, str]]:
    """None when cosmos-rl accepts `doc`, else (dotted key or "", its error text). `doc` is not changed:
    Config.from_dict mutates its argument."""
    config_cls = load_config_class()
    if config_cls is None:
        raise ImportError("cosmos-rl is not installed in this environment")
    try:
        with _quiet_cosmos_logger():
            config_cls.from_dict(copy.deepcopy(doc))
    except Exception as err:  # pydantic ValidationError, AssertionError, KeyError from its validators
        return _describe(err)
    return None


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _describe(err: Exception) -> Tuple[str, str]:
    errors = getattr(err, "errors", None)
    if callable(errors):
        try:
            found = errors()
        except Exception:  # noqa: BLE001 - fall back to the plain text
            found = []
        if found:
            # pydantic puts the union member's tag in the location (train.train_policy.sft.x): drop it.
            loc = [str(p) for p in found[0].get("loc", ()) if p not in ("sft", "grpo")]
            parts = []
            for e in found:
                where = ".".join(str(p) for p in e.get("loc", ()) if p not in ("sft", "grpo"))
                parts.append(f"{where}: {e.get('msg')} (got {_short(e.get('input'))})")
            return ".".join(loc), "; ".join(parts)
    if isinstance(err, KeyError):
        return str(err.args[0]) if err.args else "", f"missing key {err}"
    return "", f"{type(err).__name__}: {err}"
