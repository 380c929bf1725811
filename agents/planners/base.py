"""What every evaluated algorithm sees and does: :class:`WorldState` in, one pogema action per agent out.

Coordinates are pogema's: ``(x, y) = (row, column)`` in the grid *with* pogema's artificial border
(the map is shifted by ``obs_radius`` on each side and ringed by obstacles), i.e. exactly what
``pogema_env.grid.get_agents_xy()`` / ``get_targets_xy()`` / ``get_obstacles()`` return.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

MOVES: tuple[tuple[int, int], ...] = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))
"""pogema's action order (``GridConfig.MOVES``): stay, up, down, left, right."""


@dataclass
class WorldState:
    """One step of one episode, as the algorithms see it."""

    obstacles: np.ndarray
    """int [H, W], 1 = obstacle, bordered grid (static within an episode)."""
    positions: np.ndarray
    """int [A, 2] agent cells."""
    goals: np.ndarray
    """int [A, 2] current goal of each agent (lifelong: changes when reached)."""
    active: np.ndarray
    """bool [A]: the agent is on the grid and acts (False after it finished in ``finish`` mode)."""
    obs_radius: int
    """pogema's observation radius (also the border width)."""
    on_target: str
    """``restart`` (lifelong), ``nothing`` (classic) or ``finish``."""
    step: int = 0
    """Steps taken so far in this episode."""
    observations: Any = field(default=None, repr=False)
    """The environment's own observations (what a learned policy was trained on)."""
    num_actions: int = len(MOVES)
    """Actions per agent: pogema's 5 moves on a grid, the env's ``Discrete(n)`` on an env task."""
    grid: bool = True
    """False on an env task (seeded episodes of a registered env that need not be a grid): then
    ``positions`` and ``goals`` are empty ``[A, 0]`` arrays and only ``active``, ``observations`` and
    ``num_actions`` mean anything (algorithms registered with ``any_env=True`` read nothing else)."""

    @property
    def num_agents(self) -> int:
        return int(self.positions.shape[0])


class Algorithm(Protocol):
    """An evaluated algorithm. ``reset`` once per episode (it may keep per-episode state), then ``act``."""

    def reset(self, state: WorldState, seed: int) -> None: ...

    def act(self, state: WorldState) -> np.ndarray:
        """int64 [A] pogema actions (see :data:`MOVES`); inactive agents' entries are ignored."""
        ...


def action_towards(src: tuple[int, int], dst: tuple[int, int]) -> int:
    """The pogema action moving from ``src`` to the adjacent (or same) cell ``dst``."""
    delta = (dst[0] - src[0], dst[1] - src[1])
    try:
        return MOVES.index(delta)
    except ValueError:
        raise ValueError(
            f"cells {src} and {dst} are not adjacent; a move changes one coordinate by 1"
        ) from None
