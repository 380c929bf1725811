"""Collision rules on hand-built situations (the parity test checks the same code against pogema at scale)."""

from __future__ import annotations

import numpy as np
import pytest
from pogema import GridConfig
from pogema.envs import _make_pogema

from envs.collisions import CollisionResolver

W = 10  # a 10x10 open grid; cells are flat indices x * W + y
FREE = np.zeros(W * W, dtype=bool)


def cell(x: int, y: int) -> int:
    return x * W + y


def resolve(system: str, moves: list[tuple[tuple[int, int], tuple[int, int]]], active=None, obstacle=FREE):
    cur = np.array([cell(*a) for a, _ in moves])
    tgt = np.array([cell(*b) for _, b in moves])
    moved = CollisionResolver(system, W * W)(cur, tgt, None if active is None else np.array(active), obstacle)
    return moved.tolist()


# (situation, moves, expected moved for block_both / priority / soft)
CASES = {
    "free moves": ([((1, 1), (1, 2)), ((5, 5), (6, 5))], [True, True], [True, True], [True, True]),
    "swap": ([((1, 1), (1, 2)), ((1, 2), (1, 1))], [False, False], [False, False], [False, False]),
    # 0 follows 1 (0 moves into the cell 1 leaves)
    "follow, leader later": (
        [((1, 1), (1, 2)), ((1, 2), (1, 3))],
        [False, True],
        [False, True],
        [True, True],
    ),
    # 1 follows 0: under priority 0 has already left when 1 moves
    "follow, leader first": ([((1, 2), (1, 3)), ((1, 1), (1, 2))], [True, False], [True, True], [True, True]),
    "contested cell": ([((1, 1), (1, 2)), ((1, 3), (1, 2))], [False, False], [True, False], [True, False]),
    "contested, higher index first": (
        [((1, 3), (1, 2)), ((1, 1), (1, 2))],
        [False, False],
        [True, False],
        [True, False],
    ),
    "into a waiting agent": (
        [((1, 1), (1, 2)), ((1, 2), (1, 2))],
        [False, False],
        [False, False],
        [False, False],
    ),
    # a rotation of four agents around a 2x2 block
    "cycle": (
        [((1, 1), (1, 2)), ((1, 2), (2, 2)), ((2, 2), (2, 1)), ((2, 1), (1, 1))],
        [False] * 4,
        [False] * 4,
        [True] * 4,
    ),
    # 2 waits; 1 wants its cell, 0 wants 1's cell: the chain stops in soft
    "blocked chain": (
        [((1, 0), (1, 1)), ((1, 1), (1, 2)), ((1, 2), (1, 2))],
        [False] * 3,
        [False] * 3,
        [False] * 3,
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("system", ["block_both", "priority", "soft"])
def test_rules(name, system):
    moves, *expected = CASES[name]
    assert resolve(system, moves) == expected[["block_both", "priority", "soft"].index(system)]


def _pogema_moved(system: str, moves) -> list[bool]:
    """pogema's own answer for the same situation (goals far away, so nobody finishes)."""
    deltas = {(0, 0): 0, (-1, 0): 1, (1, 0): 2, (0, -1): 3, (0, 1): 4}
    starts = [list(a) for a, _ in moves]
    goals = [[9, 9 - i] for i in range(len(moves))]
    gc = GridConfig(
        map="\n".join(["." * W] * W),
        agents_xy=starts,
        targets_xy=goals,
        num_agents=len(moves),
        collision_system=system,
        obs_radius=1,
        max_episode_steps=5,
    )
    env = _make_pogema(gc)
    env.reset()
    env.step([deltas[(b[0] - a[0], b[1] - a[1])] for a, b in moves])
    return [list(p) != s for p, s in zip(env.get_agents_xy(ignore_borders=True), starts)]


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("system", ["block_both", "priority", "soft"])
def test_table_agrees_with_pogema(name, system):
    moves, *expected = CASES[name]
    assert _pogema_moved(system, moves) == expected[["block_both", "priority", "soft"].index(system)]


@pytest.mark.parametrize("system", ["block_both", "priority", "soft"])
def test_obstacles_and_inactive_agents(system):
    wall = FREE.copy()
    wall[cell(1, 2)] = True
    assert resolve(system, [((1, 1), (1, 2))], obstacle=wall) == [False]
    # an inactive (finished) agent neither moves nor blocks its cell
    assert resolve(system, [((1, 1), (1, 2)), ((1, 2), (1, 3))], active=[True, False]) == [True, False]


def test_unknown_system():
    with pytest.raises(
        ValueError, match=r"unknown collision_system 'bounce'; allowed: block_both, priority, soft"
    ):
        CollisionResolver("bounce", 4)
