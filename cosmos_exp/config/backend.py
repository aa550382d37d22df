"""Schema of the `backend` group: which SFT engine runs stage=sft."""

from dataclasses import dataclass


@dataclass
class BackendConfig:
    name: str = "deepspeed"
    # cosmos_rl only: the launcher executable and the port of the redis-server it starts.
    executable: str = "cosmos-rl"
    redis_port: int = 12800
