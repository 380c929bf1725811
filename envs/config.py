"""EnvConfig: the environment component's typed config (owned by ``envs``). STUB - to be completed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class EnvConfig:
    name: str = "bottleneck"
    num_agents: int = 2
