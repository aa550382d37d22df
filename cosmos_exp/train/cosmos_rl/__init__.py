"""SFT through NVIDIA cosmos-rl 0.4.7: the core of stage=sft backend=cosmos_rl (stages/sft_cosmos_rl.py).

render.py        our config -> the cosmos-rl TOML document (paths fixed in advance)
freeze.py        train.freeze in cosmos-rl's parameter names per model family, checked on the checkpoint
schema.py        strict check of every key, type and enumeration against the 0.4.7 schema
pydantic_check   cosmos-rl's own validation, its config module loaded alone (needs only pydantic)
toml_io.py       a small TOML writer
document.py      the run's TOML: rendered, both checks, written
entry.py         the script cosmos-rl runs in every role: our conversations as its dataset
dataset.py       that dataset, a torch.utils.data.Dataset (cosmos-rl asserts the type)
metrics_hook.py  its step/validation reports -> <run_dir>/metrics.jsonl
environment.py   cosmos-rl's environment: the roles' PATH and PYTHONPATH, what its python must import
launch.py        preflight (launcher, its environment, redis, ports, GPUs), argv, signal forwarding
checkpoints.py   its safetensors/step_N exports -> <run_dir>/checkpoints/step_N + latest
retention.py     training states and exports pruned separately (cosmos-rl's max_keep deletes both)
overlong.py      items over model_max_length counted before the launch (refused or left out)
"""
