"""The Bottleneck task of the SRMT paper (arXiv 2501.13200).

A 9-wide map: two rooms of 2 rows joined by a one-cell vertical corridor of length L in column 4::

    .........   rows 0-1        top room
    .........
    ####.####   rows 2..L+1     corridor
    ####.####
    .........   rows L+2, L+3   bottom room
    .........

Agent 0 starts in the top room with its goal in the bottom room, agent 1 the other way round (more
agents alternate; starts are distinct, goals are distinct). Starts and goals are drawn anew at every
reset (the reference drew them once per map). Collisions ``block_both``, ``finish`` mode.

Train: L drawn at each reset from {3,4,5,6,7,8,12,16,17,18,20,21,22,23,24,27}, 512-step episodes.
Test: L = 3..50 and 100..1000 step 100, step limit 2L+100; evaluate one L at a time with
``make_env(bottleneck_config(L))``. The task's own settings are its options (:class:`BottleneckOptions`,
``env.options.split`` / ``env.options.corridor_lengths``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from envs.config import MAX_CORRIDOR_LENGTH, EnvConfig
from envs.grid_env import Episode, GridEnv, grid_config

WIDTH = 9
ROOM_ROWS = 2
CORRIDOR_COL = 4
ROOM_CELLS = WIDTH * ROOM_ROWS
TRAIN_CORRIDOR_LENGTHS = (3, 4, 5, 6, 7, 8, 12, 16, 17, 18, 20, 21, 22, 23, 24, 27)
TRAIN_MAX_EPISODE_STEPS = 512
DEFAULT_NUM_AGENTS = 2


@dataclass
class BottleneckOptions:
    """``env.options`` of the ``bottleneck`` env."""

    split: Literal["train", "test"] = "train"
    """Bottleneck task split: ``train`` (512-step episodes) or ``test`` (step limit 2L+100)."""
    corridor_lengths: list[int] = field(default_factory=list)
    """Bottleneck corridor lengths L, one drawn per episode; empty = the split's set (train: 3..27
    subset of 16 lengths, test: 3..50 and 100..1000 step 100)."""

    def __post_init__(self) -> None:
        if self.split not in ("train", "test"):
            raise ValueError(f"unknown split {self.split!r}; allowed: train, test")
        for length in self.corridor_lengths:
            _check_length(length)


def train_corridor_lengths() -> list[int]:
    return list(TRAIN_CORRIDOR_LENGTHS)


def test_corridor_lengths() -> list[int]:
    """L = 3..50 and 100..1000 step 100 (58 lengths)."""
    return list(range(3, 51)) + list(range(100, 1001, 100))


test_corridor_lengths.__test__ = False  # type: ignore[attr-defined]  # not a test, though pytest would collect it


def corridor_lengths(split: str) -> list[int]:
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; allowed: train, test")
    return train_corridor_lengths() if split == "train" else test_corridor_lengths()


def step_limit(length: int, split: str) -> int:
    """512 for training, 2L+100 for testing (the paper's limits)."""
    _check_length(length)
    corridor_lengths(split)  # validates the split name
    return TRAIN_MAX_EPISODE_STEPS if split == "train" else 2 * int(length) + 100


def _check_length(length: int) -> None:
    if (
        isinstance(length, bool)
        or not isinstance(length, (int, np.integer))
        or not 1 <= length <= MAX_CORRIDOR_LENGTH
    ):
        raise ValueError(
            f"corridor length {length!r} is invalid; corridor lengths must be integers in 1..{MAX_CORRIDOR_LENGTH}"
        )


def bottleneck_map(length: int) -> np.ndarray:
    """bool [L+4, 9] obstacle map (True = wall)."""
    _check_length(length)
    grid = np.zeros((2 * ROOM_ROWS + length, WIDTH), dtype=bool)
    grid[ROOM_ROWS : ROOM_ROWS + length, :] = True
    grid[ROOM_ROWS : ROOM_ROWS + length, CORRIDOR_COL] = False
    return grid


_TOP_ROOM = np.stack([np.repeat(np.arange(ROOM_ROWS), WIDTH), np.tile(np.arange(WIDTH), ROOM_ROWS)], axis=1)
_TOP_ROOM.setflags(write=False)


def room_cells(length: int) -> tuple[np.ndarray, np.ndarray]:
    """int [18, 2] cells of the top and of the bottom room, in map coordinates."""
    _check_length(length)
    return _TOP_ROOM.copy(), _TOP_ROOM + np.array([ROOM_ROWS + length, 0])


def sample_task(length: int, num_agents: int, rng: np.random.Generator) -> tuple[list, list]:
    """Starts and goals: even agents top -> bottom, odd agents bottom -> top, uniform over room cells."""
    top, bottom = room_cells(length)
    down = num_agents - num_agents // 2  # agents 0, 2, 4, ...
    up = num_agents // 2
    if max(down, up) > ROOM_CELLS:
        raise ValueError(
            f"num_agents={num_agents} is more than the Bottleneck rooms hold ({2 * ROOM_CELLS} agents, "
            f"{ROOM_CELLS} per room); allowed: 1..{2 * ROOM_CELLS}"
        )
    starts_down, starts_up = top[rng.permutation(ROOM_CELLS)[:down]], bottom[rng.permutation(ROOM_CELLS)[:up]]
    goals_down, goals_up = bottom[rng.permutation(ROOM_CELLS)[:down]], top[rng.permutation(ROOM_CELLS)[:up]]
    starts = np.empty((num_agents, 2), dtype=np.int64)
    goals = np.empty((num_agents, 2), dtype=np.int64)
    starts[0::2], starts[1::2] = starts_down, starts_up
    goals[0::2], goals[1::2] = goals_down, goals_up
    return starts.tolist(), goals.tolist()


def bottleneck_config(length: int, split: str = "test", **overrides) -> EnvConfig:
    """EnvConfig defaults for Bottleneck with one corridor length; ``overrides`` sets other fields."""
    _check_length(length)
    options = {**overrides.pop("options", {}), "split": split, "corridor_lengths": [int(length)]}
    return EnvConfig(**{"name": "bottleneck", **overrides, "options": options})


def with_length(cfg: EnvConfig, length: int, split: str = "test") -> EnvConfig:
    """A (training) Bottleneck config moved to one corridor length of ``split``; every other setting is
    kept except ``max_episode_steps``, reset to the split's limit (2L+100 for test)."""
    _check_length(length)
    options = {**cfg.options, "corridor_lengths": [int(length)], "split": split}
    return dataclasses.replace(cfg, options=options, max_episode_steps=None)


def checked_config(cfg: EnvConfig) -> tuple[EnvConfig, list[int]]:
    """``cfg`` with the task's defaults filled in and its corridor lengths, or a one-line ValueError
    (shared by :func:`build_bottleneck` and the batched :class:`envs.bottleneck_vec.BottleneckVector`)."""
    if (
        cfg.map is not None
        or cfg.maps_file is not None
        or cfg.agents_xy is not None
        or cfg.targets_xy is not None
    ):
        raise ValueError(
            "the 'bottleneck' env builds its own map and tasks; leave map, maps_file, agents_xy and targets_xy unset"
        )
    if cfg.on_target == "restart":
        raise ValueError("on_target='restart' is not supported by 'bottleneck'; allowed: finish, nothing")
    opts: BottleneckOptions = cfg.opts
    if cfg.num_agents is None:
        cfg = dataclasses.replace(cfg, num_agents=DEFAULT_NUM_AGENTS)
    lengths = list(opts.corridor_lengths) or corridor_lengths(opts.split)
    for length in lengths:
        _check_length(length)
    sample_task(lengths[0], cfg.num_agents, np.random.default_rng(0))  # capacity check, before any reset
    return cfg, lengths


def build_bottleneck(cfg: EnvConfig, seed: int | None = None) -> GridEnv:
    cfg, lengths = checked_config(cfg)
    opts: BottleneckOptions = cfg.opts
    maps = {L: bottleneck_map(L).astype(int).tolist() for L in set(lengths)}

    def new_episode(ep_seed: int, rng: np.random.Generator) -> Episode:
        length = lengths[int(rng.integers(len(lengths)))] if len(lengths) > 1 else lengths[0]
        starts, goals = sample_task(length, cfg.num_agents, rng)
        limit = cfg.max_episode_steps or step_limit(length, opts.split)
        gc = grid_config(
            map=maps[length],
            agents_xy=starts,
            targets_xy=goals,
            num_agents=cfg.num_agents,
            on_target=cfg.on_target,
            collision_system=cfg.collision_system,
            obs_radius=cfg.radius,
            max_episode_steps=limit,
            seed=ep_seed,
        )
        return Episode(gc, ep_seed, {"map_name": f"bottleneck-{length}", "corridor_length": length})

    return GridEnv(cfg, new_episode, seed)
