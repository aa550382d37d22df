"""A strict check of a cosmos-rl 0.4.7 TOML document: every key known, every type and enumeration right.

cosmos-rl's own pydantic Config ignores unknown keys and most enumerations (a misspelled key is
silently dropped), so every key we emit is checked here against the 0.4.7 schema
(shared/reference/cosmos-rl-0.4.7-schema.md). Only the tables an SFT run uses are listed; a key in any
other table fails too, so nothing unchecked reaches the launcher.

Type specs are small strings: alternatives joined by "|", each one of str, int, float (an int is
accepted), bool, list, list[str], list[float], dict, any; a leading "?" also allows a missing value
(TOML has no null, so that only matters for documents built in Python).
"""

import math
from typing import Any, Dict, Tuple

from cosmos_exp.config import ConfigError

# Sub-tables are named by their dotted path; everything else is a leaf with a type spec.
SCHEMA: Dict[str, Dict[str, str]] = {
    "": {
        "controller_execution_id": "?str", "custom": "dict", "redis": "str", "eth_ips": "str", "mode": "str",
    },
    "train": {
        "prefetch_payloads": "bool", "optm_name": "str", "optm_lr": "float|list[float]|dict",
        "optm_impl": "str|list[str]", "optm_weight_decay": "float", "optm_betas": "list[float]",
        "optm_warmup_steps": "int|float", "optm_warmup_start_factor": "float", "optm_decay_ratio": "?float",
        "optm_decay_type": "?str", "optm_min_lr_factor": "float", "optm_grad_norm_clip": "float",
        "ema_enable": "bool", "ema_decay": "float", "ema_update_step_interval": "int", "master_dtype": "str",
        "param_dtype": "str", "transfer_dtype": "str", "logprob_dtype": "str", "fsdp_reduce_dtype": "str",
        "fsdp_offload": "bool", "fsdp_reshard_after_forward": "str", "train_batch_per_replica": "int",
        "resume": "bool|str", "epoch": "int", "output_dir": "str", "timestamp": "str", "epsilon": "float",
        "async_tp_enabled": "bool", "compile": "bool", "sync_weight_interval": "int",
        "p2p_sync_pack_tensors": "bool", "p2r_sync_groups_per_round": "int", "coalesce_weight_sync": "bool",
        "deterministic": "bool", "activation_offload": "bool", "fa_version": "?int", "seed": "?int",
        "local_dataset": "?bool", "force_use_hf": "?bool", "non_text": "bool", "max_num_steps": "?int",
        "sequence_packing": "bool", "save_ckpt_at_exit": "bool", "signal_to_handle": "list[str]",
    },
    # Only the SFT variant of the train_policy union: this backend never emits GRPO settings.
    "train.train_policy": {
        "type": "str", "trainer_type": "str", "mini_batch": "int", "dataloader_shuffle": "bool",
        "dataloader_seed": "int", "dataloader_batch_size": "?int", "enable_dataset_cache": "bool",
        "dataloader_num_workers": "int", "dataloader_prefetch_factor": "?int", "dataloader_drop_last": "bool",
        "data_dispatch_as_rank_in_mesh": "bool", "conversation_column_name": "str", "system_prompt": "str",
        "balance_dp_token": "bool", "enable_dp_load_balancing": "bool", "load_balanced_pool_size": "int",
        "load_balanced_max_tokens_for_batch": "?int", "load_balanced_batching_strategy": "str",
        "load_balanced_batches_per_optimizer_step": "int", "dataloader_broadcast": "bool",
    },
    "train.train_policy.dataset": {
        "name": "str", "subset": "?str", "revision": "?str", "split": "str|list[str]", "test_size": "?float",
        "local_dir": "str",
    },
    "train.ckpt": {
        "enable_checkpoint": "bool", "save_freq": "int", "save_freq_in_epoch": "int", "save_mode": "str",
        "max_keep": "int", "export_safetensors": "bool", "upload_hf": "bool", "hf_repo_name": "str",
        "upload_s3": "bool|str", "s3_bucket": "?str", "s3_prefix": "str",
    },
    "train.fp8": {"enable_fp8": "bool", "fp8_recipe": "str", "quant_recipe": "str"},
    "policy": {
        "is_diffusers": "bool", "model_name_or_path": "str", "model_safetensor_path": "?str",
        "model_revision": "?str", "model_max_length": "int", "model_gradient_checkpointing": "bool",
        "trainable_map": "?dict", "freeze_pattern": "?list[str]", "trainable_pattern": "?list[str]",
        "enable_liger_kernel": "bool", "enable_liger_cross_entropy": "bool",
        "enable_liger_fused_cross_entropy": "bool", "aux_loss_coeff": "float",
    },
    "policy.parallelism": {
        "n_init_replicas": "int", "tp_size": "int", "cp_size": "int", "ep_size": "int", "dp_shard_size": "int",
        "pp_size": "int", "pp_dynamic_shape": "bool", "pp_micro_batch_size": "int", "dp_replicate_size": "int",
        "pp_schedule": "str", "pp_layers_per_stage": "int",
    },
    "policy.lora": {
        "r": "int", "lora_names": "list[str]", "lora_path": "?str", "lora_alpha": "float", "lora_dropout": "float",
        "target_modules": "list[str]|str", "primary_adapter": "?str", "use_rslora": "bool",
        "modules_to_save": "?list[str]", "alpha_pattern": "?dict", "r_pattern": "?dict",
        "init_lora_weights": "bool|str",
    },
    "logging": {
        "wandb_run_id": "?str", "wandb_run_name": "?str", "wandb_resume": "?str", "logger": "list[str]",
        "level": "?str", "log_interval": "int", "multi_modal_log_interval": "?int", "project_name": "str",
        "group_name": "?str", "experiment_name": "?str", "report_mfu": "bool",
    },
    "validation": {
        "enable": "bool", "val_before_train": "bool", "freq": "int", "batch_size": "?int", "temperature": "float",
        "top_p": "?float", "top_k": "?int", "repetition_penalty": "float", "n_generation": "int",
        "max_response_length": "?int", "reward_function": "str|list[str]|dict", "use_remote_reward": "?bool",
    },
    "validation.dataset": {
        "name": "str", "subset": "?str", "revision": "?str", "split": "str|list[str]", "test_size": "?float",
        "local_dir": "str",
    },
    "profiler": {"enable_profiler": "bool", "enable_nsys": "bool"},
}

# Real cosmos-rl tables that an SFT run does not use: refused rather than passed through unchecked.
UNCHECKED_TABLES = ("rollout", "distillation", "vla", "train.fp4", "profiler.sub_profiler_config")

_DTYPES = ("bfloat16", "float16", "float32")
ENUMS: Dict[str, Tuple[Any, ...]] = {
    "mode": ("disaggregated", "colocated", "colocated_separated"),
    "train.optm_name": ("AdamW", "Adam"),
    "train.optm_impl": ("fused", "foreach", "for-loop"),
    "train.optm_decay_type": ("sqrt", "cosine", "linear", "none"),
    "train.master_dtype": _DTYPES, "train.param_dtype": _DTYPES, "train.transfer_dtype": _DTYPES,
    "train.logprob_dtype": _DTYPES, "train.fsdp_reduce_dtype": ("float32",),
    "train.fsdp_reshard_after_forward": ("always", "never", "default"),
    "train.fa_version": (2, 3),
    "train.fp8.fp8_recipe": ("dynamic_scaling", "delayed_scaling"),
    "train.fp8.quant_recipe": ("rowwise", "tensorwise"),
    "train.train_policy.type": ("sft",),
    "train.train_policy.load_balanced_batching_strategy": ("prefer_first", "prefer_closest"),
    "train.ckpt.save_mode": ("async", "sync"),
    "policy.parallelism.pp_schedule": ("1F1B", "GPipe", "Interleaved1F1B"),
    "logging.wandb_resume": ("allow", "must", "never", "auto"),
    "logging.logger": ("console", "wandb"),  # per list item
    "train.signal_to_handle": ("SIGUSR1", "SIGUSR2", "SIGTERM", "SIGINT"),  # per list item
}
# Keys that are at least 1 in any run we launch (cosmos-rl divides by or counts with them).
POSITIVE = ("train.train_batch_per_replica", "train.epoch", "train.train_policy.mini_batch", "train.ckpt.save_freq",
            "policy.model_max_length", "policy.parallelism.n_init_replicas", "policy.parallelism.tp_size",
            "policy.parallelism.cp_size", "policy.parallelism.pp_size", "policy.parallelism.dp_replicate_size",
            "policy.parallelism.ep_size")


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _matches(value: Any, alt: str) -> bool:
    if alt == "any":
        return True
    if alt == "bool":
        return isinstance(value, bool)
    if alt == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if alt == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if alt == "str":
        return isinstance(value, str)
    if alt == "dict":
        return isinstance(value, dict)
    if alt.startswith("list"):
        if not isinstance(value, list):
            return False
        inner = alt[5:-1] if alt != "list" else "any"
        return all(_matches(v, inner) for v in value)
    raise ValueError(f"unknown type spec {alt!r}")


def type_ok(value: Any, spec: str) -> bool:
    if spec.startswith("?"):
        if value is None:
            return True
        spec = spec[1:]
    return any(_matches(value, alt) for alt in spec.split("|"))


def _fail(key: str, message: str, hint: str = "") -> None:
    raise ConfigError(f"cosmos_rl.{key}", message, hint)


def check_document(doc: Dict[str, Any]) -> None:
    """Raise ConfigError naming the first unknown key, wrong type or bad value (keys as cosmos_rl.<toml key>)."""
    _check_table(doc, "")
    _check_values(doc)


def _check_table(table: Dict[str, Any], prefix: str) -> None:
    fields = SCHEMA.get(prefix)
    if fields is None:
        _fail(prefix, "is not a cosmos-rl 0.4.7 table this backend checks",
              "known tables: " + ", ".join(sorted(k or "(top level)" for k in SCHEMA)))
    for key, value in table.items():
        full = _join(prefix, key)
        if full in SCHEMA:
            if not isinstance(value, dict):
                _fail(full, f"must be a table, got {type(value).__name__}")
            _check_table(value, full)
            continue
        if full in UNCHECKED_TABLES:
            _fail(full, "is not a cosmos-rl 0.4.7 table this backend checks (an SFT run does not use it)",
                  "known tables: " + ", ".join(sorted(k or "(top level)" for k in SCHEMA)))
        if key not in fields:
            close = [k for k in fields if _similar(k, key)]
            _fail(full, "unknown key (cosmos-rl 0.4.7 would ignore it silently)",
                  f"did you mean {_join(prefix, close[0])}?" if close else "see shared/reference/cosmos-rl-0.4.7-schema.md")
        if not type_ok(value, fields[key]):
            _fail(full, f"{value!r} ({type(value).__name__}) does not match the type {fields[key]}")


def _similar(a: str, b: str) -> bool:
    """Same letters in another order, or one letter off: enough to suggest the intended key."""
    if sorted(a) == sorted(b):
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    diffs = sum(1 for x, y in zip(a, b) if x != y)
    return diffs + abs(len(a) - len(b)) <= 1


def _get(doc: Dict[str, Any], dotted: str) -> Tuple[bool, Any]:
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _check_values(doc: Dict[str, Any]) -> None:
    for key, allowed in ENUMS.items():
        present, value = _get(doc, key)
        if not present or value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            if item not in allowed:
                _fail(key, f"{item!r} is not one of {', '.join(map(str, allowed))}")
    for key in POSITIVE:
        present, value = _get(doc, key)
        if present and value < 1:
            _fail(key, f"must be >= 1, got {value}")
    present, warmup = _get(doc, "train.optm_warmup_steps")
    if present and (warmup < 0 or (isinstance(warmup, float) and warmup > 1)):
        _fail("train.optm_warmup_steps", f"{warmup} is neither a step count (int >= 0) nor a fraction in [0, 1]")
    present, lr = _get(doc, "train.optm_lr")
    if present and isinstance(lr, dict) and "global" not in lr:
        _fail("train.optm_lr", "a per-module learning-rate table must contain 'global'")
    present, betas = _get(doc, "train.optm_betas")
    if present and len(betas) != 2:
        _fail("train.optm_betas", f"needs two values, got {betas}")
    present, keep = _get(doc, "train.ckpt.max_keep")
    if present and keep != -1 and keep < 1:
        _fail("train.ckpt.max_keep", f"must be -1 (keep all) or >= 1, got {keep}")
    present, shard = _get(doc, "policy.parallelism.dp_shard_size")
    if present and shard != -1 and shard < 1:
        _fail("policy.parallelism.dp_shard_size", f"must be -1 or >= 1, got {shard}")
    for key in ("train.output_dir", "policy.model_name_or_path"):
        present, value = _get(doc, key)
        if not present or not value:
            _fail(key, "is required for a launch (cosmos-rl fails with KeyError or loads a default model)")
