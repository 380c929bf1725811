"""ModelConfig: the model component's typed config (owned by ``srmt``). STUB - to be completed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ModelConfig:
    core: str = "srmt"
    hidden_size: int = 16
