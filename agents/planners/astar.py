"""pogema's own decentralised A* agent (``pogema.AStarAgent``), one per agent, as an evaluated algorithm.

Each agent plans on the obstacles it has seen so far (its partial observations, remembered), ignores
other agents, and takes a random action when it did not move on the previous step. This is the
``A*`` baseline that ships with pogema 1.4.0 (``pogema/a_star_policy.py``); it is wrapped, not rewritten.
"""

from __future__ import annotations

import numpy as np
from pogema import AStarAgent

from agents.planners.base import WorldState


def pomapf_observations(state: WorldState, starts: np.ndarray) -> list[dict]:
    """pogema's ``POMAPF`` observation dicts, rebuilt from the world state (so any env backend works).

    ``obstacles`` / ``agents`` are the ``(2r+1)^2`` windows around each agent; ``xy`` and ``target_xy``
    are relative to the agent's start cell, as pogema defines them.
    """
    r = state.obs_radius
    agents_map = np.zeros(state.obstacles.shape, dtype=np.float32)
    on_grid = state.positions[state.active]
    agents_map[on_grid[:, 0], on_grid[:, 1]] = 1.0
    obstacles = state.obstacles.astype(np.float32)
    out = []
    for (x, y), (sx, sy), (gx, gy) in zip(state.positions.tolist(), starts.tolist(), state.goals.tolist()):
        out.append(
            {
                "obstacles": obstacles[x - r : x + r + 1, y - r : y + r + 1],
                "agents": agents_map[x - r : x + r + 1, y - r : y + r + 1],
                "xy": (x - sx, y - sy),
                "target_xy": (gx - sx, gy - sy),
            }
        )
    return out


class AStar:
    """One ``pogema.AStarAgent`` per agent; seeded per episode so runs repeat exactly."""

    def __init__(self) -> None:
        self.agents: list[AStarAgent] = []
        self.starts = np.zeros((0, 2), dtype=np.int64)

    def reset(self, state: WorldState, seed: int) -> None:
        # one independent random stream per agent, all derived from the episode seed
        seeds = np.random.SeedSequence(seed).generate_state(state.num_agents).tolist()
        self.agents = [AStarAgent(seed=s) for s in seeds]
        self.starts = state.positions.copy()

    def act(self, state: WorldState) -> np.ndarray:
        obs = pomapf_observations(state, self.starts)
        actions = np.zeros(state.num_agents, dtype=np.int64)
        for i, (agent, o) in enumerate(zip(self.agents, obs)):
            if state.active[i]:
                actions[i] = int(agent.act(o))
        return actions
