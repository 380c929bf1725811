"""pogema's grids with the two pure-Python BFS passes of a reset replaced by faster equivalents.

pogema 1.4.0 labels connected components twice per reset (to place agents, and for lifelong goal
generation) by indexing numpy arrays cell by cell; on a 32x32 map with 64 agents that is ~20 ms, more
than 100 of our steps. These subclasses compute the same components with a plain-list BFS and keep
everything else pogema's own (``placing``, RNG use, borders), so every instance is identical to
pogema's (``tests/test_envs_fast_grid.py`` compares them seed by seed). The env classes below only
swap in these grids.
"""

from __future__ import annotations

from collections import deque
from copy import deepcopy

import numpy as np
from pogema import GridConfig
from pogema.envs import Pogema, PogemaCoopFinish, PogemaLifeLong
from pogema.generator import generate_obstacles, placing
from pogema.grid import Grid, GridLifeLong
from pogema.grid_registry import in_registry


def label_components(free: np.ndarray, first_label: int = 2) -> tuple[np.ndarray, list[int]]:
    """4-connected components of ``free`` (bool [H, W]).

    Returns labels [H, W] int64 (0 = blocked, components numbered from ``first_label`` in row-major
    order of their first cell, as pogema numbers them) and sizes with ``sizes[label]`` = cell count
    (entries below ``first_label`` are 0).
    """
    H, W = free.shape
    flat = free.ravel().tolist()
    labels = [0] * (H * W)
    sizes = [0] * first_label
    label = first_label
    for start in range(H * W):
        if not flat[start] or labels[start]:
            continue
        labels[start] = label
        size, queue = 1, deque([start])
        while queue:
            c = queue.popleft()
            x, y = divmod(c, W)
            for n, ok in ((c - W, x > 0), (c + W, x < H - 1), (c - 1, y > 0), (c + 1, y < W - 1)):
                if ok and flat[n] and not labels[n]:
                    labels[n] = label
                    size += 1
                    queue.append(n)
        sizes.append(size)
        label += 1
    return np.array(labels, dtype=np.int64).reshape(H, W), sizes


def positions_and_targets(obstacles: np.ndarray, config: GridConfig) -> tuple[list, list]:
    """pogema's ``generate_positions_and_targets_fast`` with the component labelling done by
    :func:`label_components`: same shuffled cell order, same ``placing``, same result."""
    start_id = max(config.FREE, config.OBSTACLE) + 1
    labels, sizes = label_components(obstacles == config.FREE, start_id)
    grid = np.where(labels > 0, labels, obstacles).astype(obstacles.dtype)
    order = [(x, y) for x, y in zip(*np.nonzero(labels))]
    order = [(int(x), int(y)) for x, y in order]  # row-major, like pogema's list
    np.random.default_rng(config.seed).shuffle(order)
    return placing(order=order, components=sizes, grid=grid, start_id=start_id, num_agents=config.num_agents)


class _PointToComponent:
    """``point_to_component[(x, y)]`` over a label array (pogema keeps a dict of every cell)."""

    def __init__(self, labels: np.ndarray):
        self._labels = labels

    def __getitem__(self, xy: tuple[int, int]) -> int:
        return int(self._labels[xy[0], xy[1]])


class _ComponentToPoints:
    """``component_to_points[label]``: the component's cells in row-major order, built on first use."""

    def __init__(self, labels: np.ndarray):
        self._labels = labels
        self._cache: dict[int, list[tuple[int, int]]] = {}

    def __getitem__(self, label: int) -> list[tuple[int, int]]:
        pts = self._cache.get(label)
        if pts is None:
            pts = self._cache[label] = [tuple(p) for p in np.argwhere(self._labels == label).tolist()]
        return pts


def components(obstacles: np.ndarray, config: GridConfig) -> tuple[_ComponentToPoints, _PointToComponent]:
    """pogema's ``get_components`` as lazy lookups: obstacles form label 1, free cells their component."""
    labels, _ = label_components(obstacles == config.FREE, 2)
    labels = np.where(labels > 0, labels, 1)
    return _ComponentToPoints(labels), _PointToComponent(labels)


def _generated(config: GridConfig) -> bool:
    """Whether pogema would place agents itself (the slow path this module replaces)."""
    fixed = bool(config.targets_xy and config.agents_xy)
    possible = bool(config.possible_agents_xy and config.possible_targets_xy)
    return not fixed and not possible and not in_registry(config.map_name)


class FastGrid(Grid):
    def __init__(self, grid_config: GridConfig, add_artificial_border: bool = True, num_retries: int = 10):
        if not _generated(grid_config):
            Grid.__init__(self, grid_config, add_artificial_border, num_retries)
            return
        self.config = grid_config
        self.rnd = np.random.default_rng(grid_config.seed)
        if grid_config.map is None:
            obstacles = generate_obstacles(grid_config)
        else:
            obstacles = np.array([np.array(line) for line in grid_config.map])
        self.obstacles = obstacles.astype(np.int32)
        self.starts_xy, self.finishes_xy = positions_and_targets(self.obstacles, grid_config)
        # pogema retries with the same seed, which reproduces the same failure; fail at once instead.
        if not self.starts_xy or not self.finishes_xy or len(self.starts_xy) != len(self.finishes_xy):
            raise OverflowError(
                "Can't create task. Please check grid grid_config, especially density, num_agent and map."
            )
        if add_artificial_border:
            self.add_artificial_border()
        positions = np.zeros(self.obstacles.shape)
        for x, y in self.starts_xy:
            positions[x, y] = 1
        self.positions = positions
        self.positions_xy = self.starts_xy
        self._initial_xy = deepcopy(self.starts_xy)
        self.is_active = {agent_id: True for agent_id in range(grid_config.num_agents)}


class FastGridLifeLong(GridLifeLong):
    def __init__(self, grid_config: GridConfig, add_artificial_border: bool = True, num_retries: int = 10):
        FastGrid.__init__(self, grid_config, add_artificial_border, num_retries)  # type: ignore[arg-type]
        self.component_to_points, self.point_to_component = components(self.obstacles, grid_config)


class FastPogema(Pogema):
    def _initialize_grid(self) -> None:
        self.grid = FastGrid(grid_config=self.grid_config)


class FastPogemaCoopFinish(PogemaCoopFinish):
    def _initialize_grid(self) -> None:
        self.grid = FastGrid(grid_config=self.grid_config)


class FastPogemaLifeLong(PogemaLifeLong):
    def _initialize_grid(self) -> None:
        self.grid = FastGridLifeLong(grid_config=self.grid_config)
        # pogema's per-agent goal generators, seeded exactly as PogemaLifeLong does
        seeds = np.random.default_rng(self.grid_config.seed).integers(
            np.iinfo(np.int32).max, size=self.grid_config.num_agents
        )
        self.random_generators = [np.random.default_rng(s) for s in seeds]


POGEMA_CLASSES = {"finish": FastPogema, "nothing": FastPogemaCoopFinish, "restart": FastPogemaLifeLong}
