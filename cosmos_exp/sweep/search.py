"""Before a search by a sweeper that proposes values as it goes (hydra/sweeper=optuna) starts: check its search
space and the fixed part of its config, and settle what the sweeper is told.

    cosmos-exp -m hydra/sweeper=optuna hydra.sweeper.n_trials=3 'train.lr=tag(log, interval(1e-5,1e-3))' \\
        stage=sft experiment=demo

The jobs are not known in advance, so the grid preflight (every job composed) cannot apply. Here each searched
key gets its bounds checked (an interval's low below its high, a log scale's bounds above 0, a range that holds
a value) and the config is composed, typed, validated and planned at the low, middle and high value of each key
(one key varied at a time, the others at their first value): an unknown key, a value of the wrong type for its
dataclass field, or a value a config rule refuses fails here, naming the key, before any trial runs. Each
proposed job is validated again when it starts (sweep/trial.py). Then:

- the objective (sweep.objective) must be measurable by the stage, and its direction goes to the sweeper
  (hydra.sweeper.direction), or must agree with a direction given there;
- the sampler is seeded with `seed` unless given one, so a search resumed into the same sweep directory
  proposes the same values in the same order and its finished trials return their recorded objective;
- Optuna's own storage (hydra.sweeper.storage) is refused: hydra-optuna-sweeper pins optuna<3, whose SQL storage
  does not run on SQLAlchemy 2; resuming reads our records instead.

The sweep directory is pinned and gets sweep.json: the command, the sweeper, the search space, the objective.
"""

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Dict, List, Tuple

from cosmos_exp import rundir
from cosmos_exp.config import ConfigError
from cosmos_exp.repro.atomic import write_json_atomic

SWEEPER_GROUP = "hydra/sweeper"


def sweeper_of(overrides: List[str], compose_hydra: Callable[[List[str]], Any]) -> str:
    """The sweeper's _target_ (its group choice when given on the command line): Hydra's grid sweeper unless a
    plugin is chosen, on the command line or by a preset (then composing the fixed overrides tells)."""
    from omegaconf import OmegaConf

    chosen = [a.split("=", 1)[1] for a in overrides if a.split("=", 1)[0] == SWEEPER_GROUP and "=" in a]
    if chosen:
        return chosen[-1]
    try:
        fixed = [o.input_line for o in _parse(overrides) if not o.is_sweep_override()]
        return str(OmegaConf.select(compose_hydra(fixed), "hydra.sweeper._target_", default="") or "basic")
    except Exception:  # the grid preflight reports what does not compose, job by job
        return "basic"


def is_basic(sweeper: str) -> bool:
    return sweeper in ("basic", "") or "BasicSweeper" in sweeper


def _parse(overrides: List[str]) -> List[Any]:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_overrides(overrides=overrides)


def _shown(override: Any) -> str:
    """The search as the user wrote it: `tag(log, interval(1e-5,1e-3))`."""
    return override.input_line.split("=", 1)[1] if override.input_line else str(override.value())


def _number(x: Any) -> str:
    return repr(int(x)) if isinstance(x, int) else repr(float(x))


def sample_values(key: str, override: Any) -> List[str]:
    """Values of one searched key to validate: each choice, or a range's first and last, or an interval's low,
    middle (geometric on a log scale) and high, formatted as the sweeper formats its proposals."""
    from hydra.core.override_parser.types import Transformer

    if override.is_choice_sweep():
        return [str(v) for v in override.sweep_iterator(transformer=Transformer.encode)]
    if override.is_range_sweep():
        values = [str(v) for v in override.sweep_iterator(transformer=Transformer.encode)]
        if not values:
            raise ConfigError(key, f"{_shown(override)} holds no value",
                              "give a range whose start is below its stop")
        return [values[0], values[-1]]
    if override.is_interval_sweep():
        value = override.value()
        low, high = value.start, value.end
        shown = _shown(override)
        if not low < high:
            raise ConfigError(key, f"{shown}: the low bound must be below the high bound",
                              f"e.g. interval({high}, {low})" if low > high else "give two different bounds")
        log_scale = "log" in value.tags
        if log_scale and low <= 0:
            raise ConfigError(key, f"{shown}: a log scale needs bounds above 0", "e.g. tag(log, interval(1e-5, 1e-3))")
        middle = math.sqrt(low * high) if log_scale else (low + high) / 2
        if isinstance(low, int) and isinstance(high, int):  # Optuna proposes integers then
            middle = int(round(middle))
        return [_number(low), _number(middle), _number(high)]
    raise ConfigError(key, f"{_shown(override)} is not a search Optuna takes",
                      "use choice(...), range(...), interval(a,b) or tag(log, interval(a,b))")


def search_space(overrides: List[str], hydra_cfg: Any) -> Tuple[Dict[str, Any], List[str]]:
    """({key: parsed sweep override}, the fixed overrides): hydra.sweeper.params first, the command line after
    it (the sweeper's own order: a key given in both is searched as the command line says)."""
    from omegaconf import OmegaConf

    params = OmegaConf.select(hydra_cfg, "hydra.sweeper.params", default=None) or {}
    space: Dict[str, Any] = {}
    fixed: List[str] = []
    for o in _parse([f"{k}={v}" for k, v in params.items()]) + _parse(overrides):
        if o.is_sweep_override():
            space[o.get_key_element()] = o
        else:
            fixed.append(o.input_line)
    return space, fixed


def _composition_error(key: str, value: str, err: Exception) -> ConfigError:
    if isinstance(err, ConfigError):
        return ConfigError(err.key, f"with {key}={value}: {err.message}", err.hint)
    # Hydra says which override failed; the OmegaConf error it wraps says why (no such key, wrong type).
    cause = str(err.__cause__ or "").strip().splitlines()
    reason = (cause or str(err).strip().splitlines() or [type(err).__name__])[0]
    return ConfigError(key, f"{key}={value} does not compose: {reason}",
                       "check the key's name and the type of its field (cosmos_exp/config/)")


def validate_space(conf_dir: Path, space: Dict[str, Any], fixed: List[str],
                   stage_module: Callable[[Any], ModuleType]) -> Any:
    """Compose, type, validate and plan the config at each key's sample values; return the first one's typed
    config. A ConfigError naming the key (or, for the fixed part, the key a rule names) otherwise."""
    from cosmos_exp.sweep.preflight import _is_hydra_override, validate_job

    samples = {key: sample_values(key, o) for key, o in space.items()}
    task = [a for a in fixed if not _is_hydra_override(a)]
    first = {key: values[0] for key, values in samples.items()}

    def job(pinned: Dict[str, str]) -> List[str]:
        return task + [f"{k}={v}" for k, v in pinned.items()]

    try:
        cfg = validate_job(conf_dir, job(first), stage_module)
    except Exception as err:
        # A key of the search fails on its first value as the fixed part would: name the key when it is one.
        if isinstance(err, ConfigError) and err.key not in space:
            raise ConfigError(err.key, f"the fixed part of the search: {err.message}", err.hint) from None
        key = err.key if isinstance(err, ConfigError) else next(iter(space))
        raise _composition_error(key, first.get(key, "?"), err) from None
    for key, values in samples.items():
        for value in values[1:]:
            try:
                validate_job(conf_dir, job({**first, key: value}), stage_module)
            except Exception as err:
                raise _composition_error(key, value, err) from None
    return cfg


def sweeper_settings(cfg: Any, hydra_cfg: Any, overrides: List[str]) -> List[str]:
    """The hydra.sweeper overrides to add: the objective's direction and a seed for the sampler; a ConfigError
    for what this sweeper cannot do with us (its own storage, several objectives, a disagreeing direction)."""
    from omegaconf import OmegaConf

    from cosmos_exp.sweep import objective
    from cosmos_exp.sweep.preflight import _value

    if OmegaConf.select(hydra_cfg, "hydra.sweeper.storage", default=None) not in (None, ""):
        raise ConfigError("hydra.sweeper.storage", "Optuna's own storage is not used: hydra-optuna-sweeper pins "
                          "optuna<3, whose SQL storage does not run on SQLAlchemy 2",
                          "drop it; resume a search by rerunning its command with hydra.sweep.dir=<its directory>: "
                          "finished trials are read from their run directories")
    objective.check(cfg)
    ours = objective.direction_of(cfg)
    given = _value(overrides, "hydra.sweeper.direction")
    if given is not None and given.strip("'\"") != ours:
        raise ConfigError("sweep.objective.direction", f"the objective {objective.metric_of(cfg)} is to "
                          f"{ours} but hydra.sweeper.direction={given}",
                          "drop hydra.sweeper.direction (the objective's direction is passed on) or set "
                          f"sweep.objective.direction={given}")
    extra = [] if given is not None else [f"hydra.sweeper.direction={ours}"]
    sampler = OmegaConf.select(hydra_cfg, "hydra.sweeper.sampler", default=None)
    if sampler is not None and "seed" in sampler and sampler.seed is None:
        extra.append(f"hydra.sweeper.sampler.seed={int(cfg.seed)}")
    return extra


def preflight_any(argv: List[str], conf_dir: Path, stage_module: Callable[[Any], ModuleType]) -> List[str]:
    """The multirun preflight for any sweeper: a search's checks (below) for a plugin that proposes values,
    the grid's job-by-job checks (sweep/preflight.py) otherwise, and for single runs."""
    from cosmos_exp.sweep.preflight import (MULTIRUN_FLAGS, PASSIVE_FLAGS, compose_job, config_dir, hydra_context,
                                            preflight, split_argv)

    flags, overrides = split_argv(argv)
    if any(f in MULTIRUN_FLAGS for f in flags) and not any(f.split("=", 1)[0] in PASSIVE_FLAGS for f in flags):
        with hydra_context(conf_dir, config_dir(flags)):
            sweeper = sweeper_of(overrides, lambda fixed: compose_job(conf_dir, fixed, with_hydra=True))
            if not is_basic(sweeper):
                return preflight_search(argv, flags, overrides, sweeper, conf_dir, stage_module)
    return preflight(argv, conf_dir, stage_module)


def preflight_search(argv: List[str], flags: List[str], overrides: List[str], sweeper: str, conf_dir: Path,
                     stage_module: Callable[[Any], ModuleType]) -> List[str]:
    """argv for Hydra after the checks above; exits 2 with one line naming the key otherwise."""
    from cosmos_exp.sweep import objective
    from cosmos_exp.sweep.preflight import (CHECKPOINTS_KEY, _environment, _fail, _hydra_settings, _value,
                                            compose_job, override_key, quote_value)

    dry = any(a.lower() in ("dry_run=true", "dry_run=1", "dry_run=yes", "dry_run=on") for a in overrides)
    try:
        if _value(overrides, CHECKPOINTS_KEY) not in (None, "", "null"):
            raise ConfigError(CHECKPOINTS_KEY, f"a checkpoint sweep is a grid; the sweeper {sweeper} proposes values",
                              "drop hydra/sweeper=... for a checkpoint sweep")
        if sweeper == "optuna" and importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is None:
            raise ConfigError("hydra/sweeper", "the Optuna sweeper plugin is not installed",
                              "pip install hydra-optuna-sweeper (a dependency of cosmos_exp: reinstall it)")
        fixed_all = [o.input_line for o in _parse(overrides) if not o.is_sweep_override()]
        hydra_cfg = compose_job(conf_dir, fixed_all, with_hydra=True)
        space, fixed = search_space(overrides, hydra_cfg)
        if not space:
            raise ConfigError("hydra.sweeper.params", "the search has nothing to search",
                              "give a key a search, e.g. 'train.lr=tag(log, interval(1e-5,1e-3))'")
        sweep_dir, env = _hydra_settings(conf_dir, fixed_all)
        with _environment(env):
            cfg = validate_space(conf_dir, space, fixed, stage_module)
        extra = sweeper_settings(cfg, hydra_cfg, overrides)
    except ConfigError as err:
        print("cosmos-exp: the search is invalid; no trial was run", file=sys.stderr)
        _fail(err)
    except Exception as err:  # Hydra's own words on an override it cannot read
        print(f"cosmos-exp: cannot read the search's overrides: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    metric, direction = objective.metric_of(cfg), objective.direction_of(cfg)
    print(f"cosmos-exp: search over {', '.join(space)} validated (sweeper {sweeper}; objective {metric}, {direction})",
          file=sys.stderr)
    if dry:  # a search's jobs are proposed as it runs: there is no list of them to plan
        print("dry run: the search space and the fixed config are valid; nothing was run", file=sys.stderr)
        raise SystemExit(0)
    previous = (sweep_dir / rundir.SWEEP_JSON).is_file()
    write_json_atomic(sweep_dir / rundir.SWEEP_JSON, {
        "argv": list(argv), "sweeper": sweeper, "sweep_dir": str(sweep_dir), "resumed": previous,
        "search_space": {k: _shown(o) for k, o in space.items()},
        "objective": {"metric": metric, "direction": direction}, "sweeper_overrides": extra})
    print(f"cosmos-exp: sweep directory {sweep_dir} (resume: the same command with hydra.sweep.dir={sweep_dir}; "
          f"trials and best: cosmos-exp stage=report sweep.dir={sweep_dir})", file=sys.stderr)
    pinned = [a for a in overrides if override_key(a) != "hydra.sweep.dir"]
    return flags + pinned + extra + [f"hydra.sweep.dir={quote_value(str(sweep_dir))}"]
