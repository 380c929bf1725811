"""The multi-agent env interface every registered env implements (numpy only, no torch)."""

from __future__ import annotations

import operator
from abc import ABC, abstractmethod

import gymnasium
import numpy as np


class MultiAgentEnv(ABC):
    """One environment instance with a fixed number ``num_agents`` of agents, vectorised over the agent
    axis A (the full contract, with what trainers and evaluation rely on: docs/extending.md).

    - ``reset(seed=None) -> (obs [A, *obs_shape] float32, infos: list of A dicts)``; ``obs_shape`` is
      ``observation_space.shape``: ``(C, H, W)`` images / grids (conv encoder) or ``(D,)`` vectors (MLP
      encoder).
    - ``step(actions [A] int) -> (obs, rewards [A] float32, terminated [A] bool, truncated [A] bool, infos)``
    - ``active``: bool [A], the agent still acts (False once it left the episode, e.g. finished in
      ``finish`` mode; its actions are then ignored, its rewards are 0 and ``terminated`` stays True for
      it on every later step).

    The episode ends when all agents are terminated or all are truncated; on that step every
    ``infos[i]["metrics"]`` holds the episode metrics (float values; may be empty ``{}``). Stepping an
    ended episode raises.
    """

    num_agents: int
    observation_space: gymnasium.spaces.Box  # one agent's observation, e.g. (C, H, W) or (D,), float32
    action_space: gymnasium.spaces.Discrete  # one agent's actions
    binary_observations: bool = False
    """Every observation value is exactly 0 or 1, so a trainer may move observations as uint8 (4x fewer
    bytes) and convert them on the device. Only set it when it holds for every step."""

    @abstractmethod
    def reset(self, seed: int | None = None) -> tuple[np.ndarray, list[dict]]: ...

    @abstractmethod
    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[dict]]: ...

    @property
    @abstractmethod
    def active(self) -> np.ndarray: ...

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op unless an env holds resources
        """Release resources (nothing to release for the grid envs)."""


def check_actions(actions: object, num_agents: int, num_actions: int) -> np.ndarray:
    """``actions`` as int64 ``[A]`` in ``0..num_actions-1`` (integral floats accepted), or a one-line ValueError."""
    a = np.asarray(actions)
    if a.shape != (num_agents,):
        raise ValueError(f"actions must have shape ({num_agents},), got {a.shape}")
    if a.dtype.kind == "f" and np.all(a == np.round(a)):
        a = a.astype(np.int64)  # integral floats from generic samplers
    elif a.dtype.kind not in "iu":
        raise ValueError(f"actions must be integers 0..{num_actions - 1}, got dtype {a.dtype}")
    a = a.astype(np.int64, copy=False)
    bad = a[(a < 0) | (a >= num_actions)]
    if bad.size:
        raise ValueError(f"action {bad[0]} is out of range; allowed: 0..{num_actions - 1}")
    return a


def check_seed(seed: object) -> int:
    """An episode seed: an integer in [0, 2**63) (pogema's limit), or a one-line ValueError."""
    try:
        value = operator.index(seed)  # accepts numpy integers, rejects floats and strings
    except TypeError:
        raise ValueError(f"seed={seed!r} is invalid; it must be an integer >= 0") from None
    if isinstance(seed, bool) or not 0 <= value < 2**63 - 1:
        raise ValueError(f"seed={seed!r} is invalid; it must be an integer in [0, 2**63 - 1)")
    return value
