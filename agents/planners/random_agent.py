"""Uniformly random actions: the floor every other algorithm must clear (on a grid or any env task)."""

from __future__ import annotations

import numpy as np

from agents.planners.base import WorldState


class RandomAgent:
    def __init__(self) -> None:
        self.rng = np.random.default_rng(0)

    def reset(self, state: WorldState, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def act(self, state: WorldState) -> np.ndarray:
        return self.rng.integers(state.num_actions, size=state.num_agents, dtype=np.int64)
