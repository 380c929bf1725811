"""A tiny gymnasium-style multi-agent env, for the ``gym_multiagent`` adapter's tests and examples.

``LineWorld``: ``num_agents`` agents on a line of ``length`` cells, each with its own goal cell. An agent
observes one-hot vectors of its position and of its goal (a ``Tuple`` of per-agent ``Box(2 * length)``
spaces), moves left / stays / moves right, gets ``+1`` on reaching its goal and ``-step_cost`` per step
before that, and leaves the episode there (``terminated``; its later list entries are ``None``). It is
written the way a third-party gymnasium multi-agent env would be (lists in agent order), not as an
``envs.MultiAgentEnv``: use it through ``env.name=gym_multiagent env.options.id=envs.toy:LineWorld``.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np


class LineWorld(gymnasium.Env):
    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self, num_agents: int = 2, length: int = 5, step_cost: float = 0.01, max_steps: int = 20
    ) -> None:
        if num_agents < 1 or length < 2:
            raise ValueError(f"LineWorld needs num_agents >= 1 and length >= 2, got {num_agents}, {length}")
        self.n, self.length, self.step_cost, self.max_steps = (
            int(num_agents),
            int(length),
            float(step_cost),
            int(max_steps),
        )
        one = gymnasium.spaces.Box(0.0, 1.0, shape=(2 * self.length,), dtype=np.float32)
        self.observation_space = gymnasium.spaces.Tuple([one] * self.n)
        self.action_space = gymnasium.spaces.Tuple([gymnasium.spaces.Discrete(3)] * self.n)
        self._pos = np.zeros(self.n, dtype=np.int64)
        self._goal = np.zeros(self.n, dtype=np.int64)
        self._left = np.zeros(self.n, dtype=bool)
        self._t = 0

    def _obs(self) -> list[np.ndarray | None]:
        out: list[np.ndarray | None] = []
        for i in range(self.n):
            if self._left[i]:
                out.append(None)
                continue
            o = np.zeros(2 * self.length, dtype=np.float32)
            o[self._pos[i]] = 1.0
            o[self.length + self._goal[i]] = 1.0
            out.append(o)
        return out

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        rng = self.np_random
        self._pos = rng.integers(0, self.length, size=self.n)
        self._goal = (self._pos + rng.integers(1, self.length, size=self.n)) % self.length
        self._left[:] = False
        self._t = 0
        return self._obs(), {}

    def step(self, actions):
        self._t += 1
        rewards = [0.0] * self.n
        for i, a in enumerate(actions):
            if self._left[i]:
                continue
            self._pos[i] = int(np.clip(self._pos[i] + int(a) - 1, 0, self.length - 1))
            if self._pos[i] == self._goal[i]:
                rewards[i] = 1.0
                self._left[i] = True
            else:
                rewards[i] = -self.step_cost
        terminated = [bool(x) for x in self._left]
        truncated = [self._t >= self.max_steps and not x for x in self._left]
        return self._obs(), rewards, terminated, truncated, {}
