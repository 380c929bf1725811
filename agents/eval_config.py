"""EvalConfig: evaluation settings (owned by agents.evaluate). STUB - to be completed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class EvalConfig:
    episodes: int = 10
