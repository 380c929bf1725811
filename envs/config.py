"""EnvConfig: the environment component's typed config (owned by ``envs``).

One dataclass for every registered env. Which fields a task reads:

- all: ``name num_agents on_target collision_system obs_radius max_episode_steps reward``
- ``pogema``: the map source, one of ``map`` (a map string), ``maps_file`` (+ ``map_name`` or
  ``map_names``) or ``generator`` (``random`` uses ``size``/``width``/``height``/``density``, ``maze``
  uses ``size``/``width``/``height``/``maze_loops``); optional fixed ``agents_xy``/``targets_xy``.
- ``bottleneck``: ``split`` and ``corridor_lengths`` (the map is built, map-source fields must stay unset).
"""

from __future__ import annotations

import functools
import typing
from dataclasses import dataclass, field, fields
from typing import Any, Literal, Optional

OnTarget = Literal["finish", "nothing", "restart"]
CollisionSystem = Literal["block_both", "priority", "soft"]
RewardName = Literal["sparse", "dense", "moving_negative", "directional", "directional_negative", "follower"]
PlannerCosts = Literal["follower", "static", "unit"]
Generator = Literal["random", "maze", "mixed"]
Split = Literal["train", "test"]

# pogema's GridConfig limits, checked here so that the error names our key.
MAX_OBS_RADIUS = 128
MAX_SIDE = 4096
MAX_CORRIDOR_LENGTH = MAX_SIDE - 4
"""Longest Bottleneck corridor: the map (L + 4 rows, two rooms of 2) stays within ``MAX_SIDE``."""


@dataclass
class EnvConfig:
    name: str = "bottleneck"
    """Registered environment (``envs.registered_envs()``): ``bottleneck`` (the SRMT paper's corridor
    task) or ``pogema`` (any POGEMA grid: map string, map set or generated maps)."""
    num_agents: int = 2
    """Agents per environment instance."""
    on_target: OnTarget = "finish"
    """What reaching the goal does: ``finish`` (agent leaves the grid, its episode ends), ``nothing``
    (classic MAPF: agent stays, episode ends when all stand on their goals) or ``restart`` (lifelong:
    agent gets a new goal, the episode runs to the step limit)."""
    collision_system: CollisionSystem = "block_both"
    """pogema's collision rules: ``block_both`` (no following; contested cells block everyone),
    ``priority`` (agents move one by one in index order) or ``soft`` (following allowed, swaps blocked,
    lowest index wins a contested cell)."""
    obs_radius: Optional[int] = None
    """Observation window radius r: each agent sees (2r+1) x (2r+1) cells around itself; None = the
    task default (bottleneck: 2, as in the SRMT paper; pogema: 5, pogema's default)."""
    max_episode_steps: Optional[int] = None
    """Step limit of an episode; None = the task default (bottleneck: 512 in ``train``, 2L+100 in
    ``test``; pogema: 256)."""
    reward: RewardName = "sparse"
    """Reward function; the SRMT paper's five give +1 on reaching the goal: ``sparse`` (0 otherwise), ``dense``
    (-0.01 per step off goal), ``moving_negative`` (-0.005 waiting, -0.01 moving), ``directional``
    (+0.005 on stepping onto the next cell of a shortest path to the goal), ``directional_negative``
    (-0.005 on such a step, -0.01 otherwise); ``follower`` (Follower's: +0.01 on reaching the next cell
    of the planned path of the step before, see ``planner_costs``, and nothing for the goal itself)."""
    planner_path: bool = False
    """Add a 4th observation channel with the agent's planned path (1 on its cells, from the agent's
    own cell until the path first leaves the window): Follower's congestion-aware planner, ``envs.guidance``."""
    planner_costs: PlannerCosts = "follower"
    """Costs of the planned path (``planner_path`` and the ``follower`` reward): ``follower`` (static
    congestion cost, higher on central cells, plus per agent the number of steps it has seen another
    agent on a cell in its window since its goal changed), ``static`` (the static part only) or
    ``unit`` (plain shortest paths)."""

    # --- map source ('pogema') ---
    map: Optional[str] = None
    """A pogema map string (rows of ``.`` free / ``#`` obstacle; letters fix agents' starts and goals)."""
    maps_file: Optional[str] = None
    """A pogema-toolbox ``maps.yaml`` (name -> map string); alone it selects every map in the file."""
    map_name: Optional[str] = None
    """Map(s) from ``maps_file``: an exact name or a regex matching whole names."""
    map_names: list[str] = field(default_factory=list)
    """Map(s) from ``maps_file`` as a list of names or regexes (instead of ``map_name``)."""
    generator: Generator = "random"
    """Seeded map generator used when no map is given: ``random`` (pogema's i.i.d. obstacles),
    ``maze`` (corridors one cell wide) or ``mixed`` (a random map or a maze, even odds, drawn per
    episode); a new map every episode."""
    size: int = 8
    """Side of generated square maps."""
    width: Optional[int] = None
    """Width of generated maps (with ``height``; overrides ``size``)."""
    height: Optional[int] = None
    """Height of generated maps (with ``width``; overrides ``size``)."""
    density: float = 0.3
    """Obstacle density of ``random`` maps."""
    maze_loops: float = 0.15
    """Share of the inner walls of a ``maze`` opened after carving, so that corridors form loops."""
    agents_xy: Optional[list[Any]] = None
    """Fixed starts ``[[row, col], ...]`` in map coordinates (pogema's ``agents_xy``)."""
    targets_xy: Optional[list[Any]] = None
    """Fixed goals ``[[row, col], ...]``; for ``restart`` one goal sequence per agent (pogema's format)."""

    # --- bottleneck ---
    split: Split = "train"
    """Bottleneck task split: ``train`` (512-step episodes) or ``test`` (step limit 2L+100)."""
    corridor_lengths: list[int] = field(default_factory=list)
    """Bottleneck corridor lengths L, one drawn per episode; empty = the split's set (train: 3..27
    subset of 16 lengths, test: 3..50 and 100..1000 step 100)."""

    def __post_init__(self) -> None:
        _check_literals(self)
        from envs.registry import registered_envs  # late: the registry imports the builders

        if self.name not in registered_envs():
            raise ValueError(f"unknown env name {self.name!r}; registered: {', '.join(registered_envs())}")
        _positive("num_agents", self.num_agents)
        if self.obs_radius is not None and not 1 <= self.obs_radius <= MAX_OBS_RADIUS:
            raise ValueError(f"obs_radius={self.obs_radius} is out of range; allowed: 1..{MAX_OBS_RADIUS}")
        if self.max_episode_steps is not None:
            _positive("max_episode_steps", self.max_episode_steps)
        if not 2 <= self.size <= MAX_SIDE:
            raise ValueError(f"size={self.size} is out of range; allowed: 2..{MAX_SIDE}")
        if (self.width is None) != (self.height is None):
            raise ValueError(f"width={self.width}, height={self.height}: give both or neither")
        for key in ("width", "height"):
            v = getattr(self, key)
            if v is not None and not 1 <= v <= MAX_SIDE:
                raise ValueError(f"{key}={v} is out of range; allowed: 1..{MAX_SIDE}")
        if not 0.0 <= self.density <= 1.0:
            raise ValueError(f"density={self.density} is out of range; allowed: 0 <= density <= 1")
        if not 0.0 <= self.maze_loops <= 1.0:
            raise ValueError(f"maze_loops={self.maze_loops} is out of range; allowed: 0 <= maze_loops <= 1")
        if self.map is not None and self.maps_file is not None:
            raise ValueError("map and maps_file are exclusive: give a map string or a maps file, not both")
        if (self.map_name is not None or self.map_names) and self.maps_file is None:
            raise ValueError("map_name / map_names select maps from a maps_file; set maps_file too")
        if self.map_name is not None and self.map_names:
            raise ValueError(f"map_name={self.map_name!r} and map_names={self.map_names}: give one of them")
        for length in self.corridor_lengths:
            if (
                isinstance(length, bool)
                or not isinstance(length, int)
                or not 1 <= length <= MAX_CORRIDOR_LENGTH
            ):
                raise ValueError(
                    f"corridor length {length!r} is invalid; corridor lengths must be integers in "
                    f"1..{MAX_CORRIDOR_LENGTH}"
                )

    @property
    def radius(self) -> int:
        """The observation radius in force: ``obs_radius`` or the task default."""
        if self.obs_radius is not None:
            return self.obs_radius
        return 2 if self.name == "bottleneck" else 5

    @property
    def grid_width(self) -> int:
        """Width of generated maps (``width`` or ``size``)."""
        return self.width if self.width is not None else self.size

    @property
    def grid_height(self) -> int:
        """Height of generated maps (``height`` or ``size``)."""
        return self.height if self.height is not None else self.size

    @property
    def map_selectors(self) -> list[str]:
        """Selectors for ``maps_file`` (empty = all maps)."""
        return [self.map_name] if self.map_name is not None else list(self.map_names)


def _positive(key: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key}={value!r} is invalid; it must be an integer >= 1")


@functools.cache
def _literal_fields(cls: type) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    hints = typing.get_type_hints(cls)
    return tuple(
        (f.name, typing.get_args(hints[f.name]))
        for f in fields(cls)
        if typing.get_origin(hints[f.name]) is Literal
    )


def _check_literals(obj: Any) -> None:
    """Literal fields checked on direct construction too (OmegaConf checks them only when loading)."""
    for name, allowed in _literal_fields(type(obj)):
        value = getattr(obj, name)
        if value not in allowed:
            raise ValueError(f"unknown {name} {value!r}; allowed: {', '.join(map(str, allowed))}")
