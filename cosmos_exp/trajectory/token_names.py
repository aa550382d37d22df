"""The names of the trajectory tokens a prepared backbone's tokenizer holds (standard library only, so a stage's
plan can check a checkpoint without torch).

    <|traj_history_start|> <|traj_hist_0|> ... <|traj_history_end|>    the ego history (history_tokens.py)
    <|traj_future_start|>                                                 the last token of the backbone's prefix
    <|traj_fut_0|> ... <|traj_fut_{token_bins - 1}|>                      stage 1's discrete future (future_tokens.py)

Each family of levels sits at consecutive ids, so a level's id is level 0's id plus the level.
cosmos_exp/models/trajectory_tokens.py adds them all to a checkpoint.
"""

import json
from pathlib import Path
from typing import Any, List, Sequence, Set, Union

from cosmos_exp.config.trajectory import ActionSpaceConfig, TrajectoryPromptConfig

HISTORY_START = "<|traj_history_start|>"
HISTORY_END = "<|traj_history_end|>"
# The last token of the backbone's prefix: the expert's action tokens come after it (upstream crops the KV cache
# here after generated reasoning; with no reasoning it closes the prompt). Stage 1's future tokens follow it.
FUTURE_START = "<|traj_future_start|>"
PREPARE_HINT = "prepare the backbone with cosmos_exp.models.trajectory_tokens.prepare_backbone"


def history_token(level: int) -> str:
    return f"<|traj_hist_{level}|>"


def future_token(level: int) -> str:
    return f"<|traj_fut_{level}|>"


def future_tokens(cfg: ActionSpaceConfig) -> List[str]:
    return [future_token(i) for i in range(cfg.token_bins)]


def all_trajectory_tokens(prompt: TrajectoryPromptConfig, actions: ActionSpaceConfig) -> List[str]:
    """Every token a prepared backbone holds: the delimiters, the history levels, the future bins."""
    return ([HISTORY_START, HISTORY_END, FUTURE_START] + [history_token(i) for i in range(prompt.history_bins)]
            + future_tokens(actions))


def consecutive_offset(tokenizer: Any, names: Sequence[str], what: str) -> int:
    """Id of names[0]; a one-line error unless every name is in the tokenizer at consecutive ids."""
    ids = tokenizer.convert_tokens_to_ids(list(names))
    unk = tokenizer.unk_token_id
    if any(i is None or i == unk for i in ids) or ids != list(range(ids[0], ids[0] + len(ids))):
        raise ValueError(f"the tokenizer lacks the {len(names)} {what} tokens at consecutive ids; {PREPARE_HINT}")
    return ids[0]


def checkpoint_tokens(model_dir: Union[str, Path]) -> Set[str]:
    """The added tokens of a Hugging Face checkpoint's tokenizer.json (empty when it has none)."""
    path = Path(model_dir) / "tokenizer.json"
    try:
        added = json.loads(path.read_text(encoding="utf-8")).get("added_tokens") or []
    except (OSError, ValueError):
        return set()
    return {t.get("content") for t in added if isinstance(t, dict)}
