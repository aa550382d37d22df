"""Schema of the `backend` group: which SFT engine runs stage=sft."""

from dataclasses import dataclass, field
from typing import Any, Dict


@dataclass
class BackendConfig:
    name: str = "deepspeed"
    # cosmos_rl only: the launcher executable and the port of the redis-server it starts.
    executable: str = "cosmos-rl"
    redis_port: int = 12800
    # cosmos_rl only: the port of its controller (`cosmos-rl --port`); both must be free on the node.
    controller_port: int = 8000
    # cosmos_rl only: torch.compile the policy (train.compile). cosmos-rl defaults to true; every published
    # cookbook SFT recipe turns it off (video batches vary in length), and so do we.
    compile: bool = False
    # cosmos_rl only: extra TOML keys merged onto the rendered file (e.g. {train: {save_mode: sync}});
    # every key is checked against the cosmos-rl 0.4.7 schema like the rendered ones.
    toml_overrides: Dict[str, Any] = field(default_factory=dict)
    # cosmos_rl only: run cosmos-rl's own pydantic validation of the TOML in plan():
    # auto (when cosmos_rl is importable), always (fail if it is not), never.
    pydantic_check: str = "auto"
    # cosmos_rl only: training items whose prompt + answer exceed model.model_max_length (cosmos-rl would cut
    # them there silently, answer and end token first) are counted before the launch: refuse stops the run,
    # skip leaves them out and lists them in the data report.
    overlong: str = "refuse"
    # cosmos_rl only: seconds between looks for new exports to publish as checkpoints/step_N while it trains.
    checkpoint_poll_s: float = 30.0
