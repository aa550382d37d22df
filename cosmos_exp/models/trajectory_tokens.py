"""Adding the trajectory tokens (three delimiters, the ego-history levels and stage 1's future bins; names in
cosmos_exp/trajectory/token_names.py) to a backbone checkpoint.

A Qwen3-VL checkpoint (tiny or a real Cosmos-Reason2) has no such tokens. `prepare_backbone` adds them to the
tokenizer as special tokens (never split, never merged with text) and grows the input and output embeddings
to match (transformers' resize: the new rows start near the mean of the old ones), then writes a normal HF
directory; the stages load that directory as the backbone. A real checkpoint already has spare embedding rows
(Qwen3-VL's 151,936 rows exceed its tokenizer), but its token ids are fixed by the tokenizer, so the new tokens
always take ids after the tokenizer's last and the embeddings grow when those ids pass the rows.
"""

import json
from pathlib import Path
from typing import Any, Optional, Union

from cosmos_exp.config.trajectory import ActionSpaceConfig, TrajectoryPromptConfig
from cosmos_exp.models.loading import copy_processor_files, detect_family, load_model
from cosmos_exp.repro.atomic import atomic_directory
from cosmos_exp.trajectory.token_names import all_trajectory_tokens


def add_trajectory_tokens(model: Any, tokenizer: Any, cfg: TrajectoryPromptConfig,
                          action_cfg: Optional[ActionSpaceConfig] = None) -> int:
    """Add the missing trajectory tokens to `tokenizer` and grow `model`'s embeddings to cover them; returns how
    many were added (0 when all were there: preparing twice changes nothing). `action_cfg` sets the number of
    future bins (the reference's 3,000 by default)."""
    vocab = tokenizer.get_vocab()
    names = all_trajectory_tokens(cfg, action_cfg or ActionSpaceConfig())
    missing = [t for t in names if t not in vocab]
    if missing:
        tokenizer.add_tokens(missing, special_tokens=True)
    rows = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > rows:
        model.resize_token_embeddings(len(tokenizer))
    return len(missing)


def prepare_backbone(src_dir: Union[str, Path], out_dir: Union[str, Path], cfg: TrajectoryPromptConfig,
                     seed: int = 0, action_cfg: Optional[ActionSpaceConfig] = None) -> Path:
    """Write `src_dir`'s checkpoint with the trajectory tokens added to `out_dir` (atomically), in the dtype it
    was stored in. `seed` fixes the new embedding rows, so two preparations give identical weights."""
    import torch
    from transformers import AutoTokenizer

    detect_family(src_dir)  # a clear error for a directory that is not a checkpoint
    config = json.loads((Path(src_dir) / "config.json").read_text())
    model = load_model(src_dir, dtype=str(config.get("dtype") or config.get("torch_dtype") or "float32"))
    tokenizer = AutoTokenizer.from_pretrained(str(src_dir))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        add_trajectory_tokens(model, tokenizer, cfg, action_cfg)
    out = Path(out_dir).resolve()
    with atomic_directory(out) as tmp:
        copy_processor_files(src_dir, tmp)  # image/video processor files; the tokenizer's are rewritten below
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(str(tmp))
    return out
