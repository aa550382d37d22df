"""SFT through NVIDIA cosmos-rl 0.4.7: the core of stage=sft backend=cosmos_rl (stages/sft_cosmos_rl.py).

render.py        our config -> the cosmos-rl TOML document (paths fixed in advance)
schema.py        strict check of every key, type and enumeration against the 0.4.7 schema
pydantic_check   cosmos-rl's own validation, its config module loaded alone (needs only pydantic)
toml_io.py       a small TOML writer
document.py      the run's TOML: rendered, both checks, written
entry.py         the script cosmos-rl runs in every role: our conversations as its dataset
metrics_hook.py  its step/validation reports -> <run_dir>/metrics.jsonl
launch.py        preflight (cosmos-rl, redis-server, GPUs), argv, signal forwarding
checkpoints.py   its safetensors/step_N exports -> <run_dir>/checkpoints/step_N + latest
"""
