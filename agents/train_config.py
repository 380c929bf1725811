"""TrainConfig: APPO training settings (owned by agents.train). STUB - to be completed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainConfig:
    train_for_env_steps: int = 1_000_000
