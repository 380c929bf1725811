"""The env planner's numba kernels (envs/compiled.py) against its numpy path (envs/guidance.py): the same
plans bit for bit (masks, path cells, sub-goals, costs, counts), through goal changes, inactive agents,
resets onto new maps, re-planning every k steps and wider planning windows; the same static costs and
goal fields; and the guided env running without scipy."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from envs import compiled as K
from envs import make_env
from envs.config import EnvConfig
from envs.guidance import PLANNER_COSTS, MapCosts, PathPlanner, static_costs

ROOT = Path(__file__).resolve().parents[1]
needs_numba = pytest.mark.skipif(not K.HAVE_NUMBA, reason="numba (the 'fast' extra) not installed")
MOVES = np.array([(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)])


def assert_same(a, b, where):
    for name in ("mask", "cells", "next_cell", "cost"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.shape == y.shape, f"{name} shape at {where}: {x.shape} != {y.shape}"
        np.testing.assert_array_equal(x, y, err_msg=f"{name} at {where}")


def assert_real_paths(plan, free, pos):
    """Every path starts on its agent, steps between 4-neighbours and only ever enters free cells."""
    W = free.shape[1]
    for i, row in enumerate(plan.cells):
        xy = np.array([divmod(int(c), W) for c in row if c >= 0])
        assert tuple(xy[0]) == tuple(pos[i])
        assert free[xy[:, 0], xy[:, 1]].all(), "an obstacle on a path"
        assert (np.abs(np.diff(xy, axis=0)).sum(1) == 1).all(), "a path jumps"


def _world(rng, H, W, density):
    free = rng.random((H, W)) >= density
    if free.sum() < 4:
        free[:] = True
    return free, np.argwhere(free)


def _agents(rng, cells, A):
    pick = rng.choice(len(cells), 2 * A, replace=len(cells) < 2 * A)
    return cells[pick[:A]], cells[pick[A:]]


def _step(rng, free, cells, pos, goals, goal_change):
    H, W = free.shape
    nxt = np.clip(pos + MOVES[rng.integers(0, 5, len(pos))], 0, [H - 1, W - 1])
    pos = np.where(free[nxt[:, 0], nxt[:, 1]][:, None], nxt, pos)
    jump = rng.random(len(pos)) < 0.05  # an agent that teleports (a reset agent, say)
    pos[jump] = cells[rng.integers(len(cells), size=int(jump.sum()))]
    new = rng.random(len(pos)) < goal_change
    goals = goals.copy()
    goals[new] = cells[rng.integers(len(cells), size=int(new.sum()))]
    return pos, goals


@needs_numba
@pytest.mark.parametrize("seed", range(10))
def test_compiled_planner_is_the_numpy_planner_bit_for_bit(seed):
    """Random maps, agent counts, radii (planning windows wider than drawing ones), sight radii, cost
    kinds and replan_every; agents walk, jump, get new goals (several at once) and drop out; halfway, a reset
    onto a new map with a new number of agents. Plans and counts stay identical."""
    rng = np.random.default_rng(seed)
    costs = PLANNER_COSTS[seed % 3]
    r = int(rng.integers(1, 5))
    R = r + int(rng.integers(0, 3)) * (seed % 2)
    k = (1, 1, 2, 3, 5)[seed % 5]
    see = (None, 1, 30)[seed // 3 % 3]  # 30: beyond the numpy path's offset table, its pairwise check
    fast = PathPlanner(r, costs, plan_radius=R, see_radius=see, replan_every=k, compiled=True)
    slow = PathPlanner(r, costs, plan_radius=R, see_radius=see, replan_every=k, compiled=False)
    for episode in range(2):
        free, cells = _world(rng, *(int(x) for x in rng.integers(5, 22, 2)), rng.uniform(0.05, 0.4))
        pos, goals = _agents(rng, cells, int(rng.integers(1, 24)))
        a, b = fast.reset(free, pos, goals), slow.reset(free, pos, goals)
        assert_same(a, b, f"episode {episode} reset")
        for t in range(20):
            pos, goals = _step(rng, free, cells, pos, goals, goal_change=0.1)
            active = rng.random(len(pos)) < (1.0 if t % 3 else 0.8)
            a, b = fast.update(pos, goals, active), slow.update(pos, goals, active)
            assert_same(a, b, f"episode {episode} step {t}")
            assert_real_paths(a, free, pos)
            if fast._dyn is not None:
                np.testing.assert_array_equal(fast._dyn, slow._dyn)
                # the window values themselves, after as many Bellman-Ford steps
                np.testing.assert_array_equal(fast._solved_value, slow._solved_value)


@needs_numba
@pytest.mark.parametrize("k", [1, 4])
def test_compiled_planner_on_the_bench_workload(k):
    """The training case (64 agents, 32x32 random map, lifelong, Follower's costs): states from the env
    itself, random actions, goals reached and renewed. The env's own planner (compiled by default)
    draws the channel; a numpy planner on the same states gives the same plans."""
    from agents.bench.env import WORKLOADS

    cfg = replace(WORKLOADS["random-32x32-lifelong"], planner_path=True, planner_replan_every=k)
    env = make_env(cfg, seed=3)
    obs, _ = env.reset()
    assert env._planner.compiled
    slow = PathPlanner(cfg.obs_radius, "follower", replan_every=k, compiled=False)
    b = slow.reset(~env.obstacles, env.agents_xy(), env.targets_xy())
    rng = np.random.default_rng(0)
    goals = env.targets_xy().copy()
    renewed = 0
    for t in range(40):
        assert_same(env._plan, b, f"step {t}")
        np.testing.assert_array_equal(obs[:, 3], b.mask)
        obs, *_ = env.step(rng.integers(0, 5, cfg.num_agents))
        renewed += int((env.targets_xy() != goals).any(1).sum())
        goals = env.targets_xy().copy()
        b = slow.update(env.agents_xy(), env.targets_xy(), env.active)
    assert renewed > 0  # goal changes happened along the way


def _symmetric_cases():
    """Maps with a mirror symmetry that the agents and goals share: paths tie exactly, cell after cell."""
    diag = np.ones((11, 11), dtype=bool)  # symmetric about the diagonal: down / right, up / left tie
    diag[3, 5] = diag[5, 3] = diag[7, 8] = diag[8, 7] = False
    d = np.arange(6)
    on = np.stack([d, d], 1)
    yield diag, np.concatenate([on, [[0, 6], [6, 0]]]), np.concatenate([on[::-1] + 4, [[6, 0], [0, 6]]])
    wall = np.ones((11, 11), dtype=bool)  # a wall across the straight line: up / down tie
    wall[3:8, 5] = False
    yield wall, np.array([[5, 2], [5, 9]]), np.array([[5, 8], [5, 1]])
    yield wall.T.copy(), np.array([[2, 5], [9, 5]]), np.array([[8, 5], [1, 5]])  # left / right tie


@needs_numba
@pytest.mark.parametrize("case", range(3))
@pytest.mark.parametrize("costs", PLANNER_COSTS)
def test_compiled_planner_breaks_ties_as_numpy(case, costs):
    """Where neighbours tie exactly, both planners step up, down, left, right in that order."""
    free, pos, goals = list(_symmetric_cases())[case]
    fast, slow = PathPlanner(3, costs, compiled=True), PathPlanner(3, costs, compiled=False)
    a, b = fast.reset(free, pos, goals), slow.reset(free, pos, goals)
    assert_same(a, b, "reset")
    on = np.ones(len(pos), dtype=bool)
    for t in range(3):
        a, b = fast.update(pos, goals, on), slow.update(pos, goals, on)
        assert_same(a, b, f"step {t}")
    if case > 0:  # around the wall by the first of the tied sides: up before down, left before right
        xy = np.array([divmod(int(c), free.shape[1]) for c in a.cells[0] if c >= 0])
        axis = case - 1
        assert len(xy) > 3 and (xy[:, axis] <= 5).all() and (xy[:, axis] < 5).any(), xy


@needs_numba
def test_compiled_planner_obstacles_and_agents():
    """A corridor of width 2 with an agent standing in the top lane: with the counts the compiled path
    detours through the bottom lane (as the numpy one does); no path ever enters an obstacle; an agent
    on its goal has the one-cell path."""
    rows = ["#########", "#.......#", "#.......#", "#########"]
    free = np.array([[ch == "." for ch in row] for row in rows])
    pos, goals = np.array([[1, 1], [1, 4], [2, 6]]), np.array([[1, 7], [2, 4], [2, 6]])
    fast, slow = PathPlanner(6, "follower", compiled=True), PathPlanner(6, "follower", compiled=False)
    a, b = fast.reset(free, pos, goals), slow.reset(free, pos, goals)
    for _ in range(4):
        a, b = (
            fast.update(pos, goals, np.ones(3, dtype=bool)),
            slow.update(pos, goals, np.ones(3, dtype=bool)),
        )
        assert_same(a, b, "corridor")
        assert_real_paths(a, free, pos)
    W = free.shape[1]
    detour = [divmod(int(c), W) for c in a.cells[0] if c >= 0]
    assert (1, 4) not in detour and detour[-1] == (1, 7)
    assert (a.cells[2] >= 0).sum() == 1 and a.next_cell[2] == 2 * W + 6 and a.mask[2].sum() == 1


@needs_numba
@pytest.mark.parametrize("seed", range(4))
def test_compiled_static_costs_and_goal_fields(seed):
    """Compiled static costs (BFS per source; the sample of 1024 targets beyond 4096 free cells) and
    goal fields (Dijkstra) are the numpy / scipy ones bit for bit, padded successors included."""
    rng = np.random.default_rng(seed)
    shape = ((9, 13), (31, 17), (40, 40), (72, 70))[seed]
    free = rng.random(shape) >= rng.uniform(0.1, 0.4)
    np.testing.assert_array_equal(static_costs(free, compiled=True), static_costs(free, compiled=False))
    for costs in ("follower", "unit"):
        fast, slow = MapCosts(free, costs, compiled=True), MapCosts(free, costs, compiled=False)
        np.testing.assert_array_equal(fast.enter, slow.enter)
        goals = rng.choice(np.flatnonzero(free.ravel()), 5, replace=False).tolist()
        for x, y in zip(fast.to_goal(goals), slow.to_goal(goals)):
            np.testing.assert_array_equal(x, y)
        for pad in (2, 4):
            for x, y in zip(fast.padded_fields(goals, pad), slow.padded_fields(goals, pad)):
                np.testing.assert_array_equal(x, y)


def test_compiled_option_checks(monkeypatch):
    assert PathPlanner(3).compiled == K.HAVE_NUMBA
    assert not PathPlanner(3, compiled=False).compiled
    monkeypatch.setattr(K, "HAVE_NUMBA", False)
    assert not PathPlanner(3).compiled  # without numba: the numpy path
    with pytest.raises(ValueError, match=r"compiled=True needs numba") as e:
        PathPlanner(3, compiled=True)
    assert "\n" not in str(e.value)


@needs_numba
def test_guided_env_runs_without_scipy():
    """With numba, the planner-guided env never imports scipy (on the GPU host scipy may not load)."""
    code = (
        "import sys; sys.modules['scipy'] = None\n"  # any import of scipy now fails
        "import numpy as np\n"
        "from envs import make_env\n"
        "from envs.config import EnvConfig\n"
        "cfg = EnvConfig(name='pogema', num_agents=16, size=16, density=0.3, on_target='restart',\n"
        "                collision_system='soft', planner_path=True, max_episode_steps=16)\n"
        "env = make_env(cfg, seed=0)\n"
        "env.reset()\n"
        "for t in range(40):\n"
        "    _, _, term, trunc, _ = env.step(np.random.default_rng(t).integers(0, 5, 16))\n"
        "    if term.all() or trunc.all():\n"
        "        env.reset()\n"
        "print('ok')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_env_config_default_planner():
    env = make_env(EnvConfig(name="pogema", num_agents=4, size=8, planner_path=True), seed=0)
    env.reset()
    assert env._planner.compiled == K.HAVE_NUMBA
