"""Planner-guided observations (envs.guidance): the vectorised planner against slow references, goal
changes, obstacles and agents on paths, the env's path channel and the ``follower`` reward."""

from __future__ import annotations

import heapq
from collections import deque

import guidance_reference as ref  # tests/guidance_reference.py: the implementation before the rewrite
import numpy as np
import pytest

from envs import compiled as K
from envs import make_env
from envs.config import EnvConfig
from envs.guidance import PLANNER_COSTS, AStarPlanner, PathPlanner, static_costs
from envs.rewards import FOLLOWER_BONUS, compute_rewards

needs_numba = pytest.mark.skipif(not K.HAVE_NUMBA, reason="numba (the 'fast' extra) not installed")
MOVES = {(0, 0): 0, (-1, 0): 1, (1, 0): 2, (0, -1): 3, (0, 1): 4}


def _bfs(free: np.ndarray, src: tuple[int, int]) -> np.ndarray:
    H, W = free.shape
    d = np.full((H, W), -1)
    d[src] = 0
    q = deque([src])
    while q:
        x, y = q.popleft()
        for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            nx, ny = x + dx, y + dy
            if 0 <= nx < H and 0 <= ny < W and free[nx, ny] and d[nx, ny] < 0:
                d[nx, ny] = d[x, y] + 1
                q.append((nx, ny))
    return d


def _reference(free, enter, dyn, start, goal, R):
    """Slow reference: Dijkstra over (cell, still inside the planning window) with the documented cost
    model: entering v costs enter[v] plus dyn[v] while the path has not yet left the window of radius R
    around ``start``. Returns the optimal cost (inf if the goal is unreachable)."""
    H, W = free.shape
    best = {(start, True): 0.0}
    heap = [(0.0, start, True)]
    while heap:
        d, (x, y), inside = heapq.heappop(heap)
        if (x, y) == goal:
            return d
        if d > best[((x, y), inside)]:
            continue
        for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            nx, ny = x + dx, y + dy
            if not (0 <= nx < H and 0 <= ny < W and free[nx, ny]):
                continue
            still = inside and max(abs(nx - start[0]), abs(ny - start[1])) <= R
            nd = d + enter[nx, ny] + (dyn[nx, ny] if still else 0.0)
            if nd < best.get(((nx, ny), still), np.inf):
                best[((nx, ny), still)] = nd
                heapq.heappush(heap, (nd, (nx, ny), still))
    return np.inf


def _path_cost(cells, free, enter, dyn, start, goal, R, W):
    """Cost of the planner's path under the same model, completed by the static optimum from its end."""
    xy = [divmod(int(c), W) for c in cells if c >= 0]
    assert xy[0] == tuple(start)
    cost, inside = 0.0, True
    for (ax, ay), (bx, by) in zip(xy, xy[1:]):
        assert abs(ax - bx) + abs(ay - by) == 1, "path cells are 4-neighbours"
        assert free[bx, by], "no obstacle on a path"
        inside = inside and max(abs(bx - start[0]), abs(by - start[1])) <= R
        cost += enter[bx, by] + (dyn[bx, by] if inside else 0.0)
    end = xy[-1]
    if end != tuple(goal):
        assert max(abs(end[0] - start[0]), abs(end[1] - start[1])) == R + 1, "stops at the first exit"
        cost += _reference(free, enter, np.zeros_like(enter), end, tuple(goal), -1)
    return cost


def _random_world(seed, H=14, W=15, A=10, density=0.25):
    rng = np.random.default_rng(seed)
    free = rng.random((H, W)) >= density
    cells = np.argwhere(free)
    pick = rng.choice(len(cells), 2 * A, replace=False)
    return rng, free, cells[pick[:A]], cells[pick[A:]]


def test_static_costs_match_definition():
    """max_avg / mean BFS distance to the other cells of the component, by brute force."""
    _, free, _, _ = _random_world(3, H=7, W=8, A=1)
    s = static_costs(free)
    avg = {}
    for x, y in np.argwhere(free).tolist():
        d = _bfs(free, (x, y))
        reach = d[d > 0]
        avg[(x, y)] = reach.mean() if reach.size else 0.0
    top = max(avg.values())
    for (x, y), a in avg.items():
        assert s[x, y] == pytest.approx(top / a if a > 0 else 1.0)
    assert (s[~free] == 1.0).all()
    assert s[free].min() == pytest.approx(1.0)


@pytest.mark.parametrize("costs", ["follower", "static", "unit"])
@pytest.mark.parametrize("seed", range(4))
def test_paths_are_shortest_under_the_costs(costs, seed):
    """After a few random steps (dynamic counts build up), every agent's path costs what the slow
    reference finds, and is a real path: 4-neighbour steps, free cells, from the agent to the goal or
    to the first cell outside the planning window."""
    rng, free, pos, goals = _random_world(seed)
    R = 3
    planner = PathPlanner(R, costs)
    plan = planner.reset(free, pos, goals)
    H, W = free.shape
    for _ in range(6):  # random walk: moves into free cells only, collisions don't matter here
        step = np.array(list(MOVES))[rng.integers(0, 5, len(pos))]
        nxt = np.clip(pos + step, 0, [H - 1, W - 1])
        pos = np.where(free[nxt[:, 0], nxt[:, 1]][:, None], nxt, pos)
        plan = planner.update(pos, goals, np.ones(len(pos), dtype=bool))
    enter = planner._map.enter
    p = planner.pad
    for i in range(len(pos)):
        dyn = planner._dyn[i, p:-p, p:-p] if planner._dyn is not None else np.zeros_like(enter)
        ref = _reference(free, enter, dyn, tuple(pos[i]), tuple(goals[i]), R)
        if not np.isfinite(ref):
            assert not np.isfinite(plan.cost[i]) and (plan.cells[i, 1:] < 0).all()
            continue
        assert plan.cost[i] == pytest.approx(ref, rel=1e-5, abs=1e-3)
        got = _path_cost(plan.cells[i], free, enter, dyn, pos[i], goals[i], R, W)
        assert got == pytest.approx(ref, rel=1e-5, abs=1e-3)
        if costs == "unit" and max(abs(pos[i] - goals[i])) <= R:
            assert ref == _bfs(free, tuple(pos[i]))[tuple(goals[i])]


@pytest.mark.parametrize("costs", ["follower", "unit"])
@pytest.mark.parametrize("seed", range(3))
def test_astar_planner_is_exact_follower(costs, seed):
    """AStarPlanner (FollowerLite's): every remembered count is charged, wherever it lies; paths end at
    the goal; the drawn mask is the path's prefix inside the window."""
    rng, free, pos, goals = _random_world(seed)
    r = 3
    planner = AStarPlanner(r, costs)
    plan = planner.reset(free, pos, goals)
    H, W = free.shape
    for _ in range(6):
        step = np.array(list(MOVES))[rng.integers(0, 5, len(pos))]
        nxt = np.clip(pos + step, 0, [H - 1, W - 1])
        pos = np.where(free[nxt[:, 0], nxt[:, 1]][:, None], nxt, pos)
        plan = planner.update(pos, goals, np.ones(len(pos), dtype=bool))
    enter = planner._map.enter
    for i in range(len(pos)):
        dyn = np.zeros_like(enter) if costs == "unit" else np.reshape(planner._cost[i], (H, W)) - enter
        ref = _reference(free, enter, dyn, tuple(pos[i]), tuple(goals[i]), H + W)
        if not np.isfinite(ref):
            assert (plan.cells[i, 1:] < 0).all()
            continue
        assert plan.cost[i] == pytest.approx(ref, rel=1e-9)
        assert _path_cost(plan.cells[i], free, enter, dyn, pos[i], goals[i], H + W, W) == pytest.approx(ref)
        xy = [divmod(int(c), W) for c in plan.cells[i] if c >= 0]
        assert xy[-1] == tuple(goals[i])
        want = np.zeros((2 * r + 1, 2 * r + 1), dtype=bool)
        for x, y in xy:
            if max(abs(x - pos[i][0]), abs(y - pos[i][1])) > r:
                break
            want[x - pos[i][0] + r, y - pos[i][1] + r] = True
        np.testing.assert_array_equal(plan.mask[i], want)


def test_dynamic_counts_are_what_each_agent_sees():
    """+1 per step on each cell where another active agent stands within see_radius; never the own
    cell; nothing from inactive agents; cleared when the goal changes."""
    free = np.ones((9, 9), dtype=bool)
    pos = np.array([[4, 4], [4, 6], [0, 0], [8, 8]])
    goals = np.array([[8, 0], [0, 8], [8, 4], [0, 4]])
    planner = PathPlanner(2, "follower")
    planner.reset(free, pos, goals)
    active = np.array([True, True, True, False])
    planner.update(pos, goals, active)
    p = planner.pad
    dyn = planner._dyn[:, p:-p, p:-p]
    assert dyn[0, 4, 6] == 2 and dyn[1, 4, 4] == 2  # seen at reset and at this step
    assert dyn[0].sum() == 2 and dyn[1].sum() == 2  # agent 2 is out of view, agent 3 inactive
    assert dyn[0, 4, 4] == 0  # never its own cell
    assert dyn[2].sum() == 0 and dyn[3].sum() == 0  # nobody within 2 of them
    goals2 = goals.copy()
    goals2[0] = [0, 0]
    planner.update(pos, goals2, active)
    dyn = planner._dyn[:, p:-p, p:-p]
    assert dyn[0].sum() == 1 and dyn[1].sum() == 3  # agent 0 forgot, agent 1 kept counting


def test_path_follows_a_goal_change():
    free = np.ones((11, 11), dtype=bool)
    pos = np.array([[5, 5]])
    planner = PathPlanner(3, "unit")
    plan = planner.reset(free, pos, np.array([[5, 7]]))
    assert [divmod(int(c), 11) for c in plan.cells[0] if c >= 0] == [(5, 5), (5, 6), (5, 7)]
    plan = planner.update(pos, np.array([[2, 5]]), np.ones(1, dtype=bool))
    assert [divmod(int(c), 11) for c in plan.cells[0] if c >= 0] == [(5, 5), (4, 5), (3, 5), (2, 5)]
    assert plan.next_cell[0] == 4 * 11 + 5
    # the drawn window holds that path and nothing else
    r = 3
    want = np.zeros((7, 7), dtype=bool)
    want[[r, r - 1, r - 2, r - 3], r] = True
    assert (plan.mask[0] == want).all()


def test_path_avoids_a_watched_agent_and_never_crosses_obstacles():
    """Corridor of width 2: agent 0 walks along the top lane, agent 1 stands in it. Once agent 0 has
    seen agent 1 there for a few steps the detour through the bottom lane is cheaper and the path
    takes it; obstacles are never on any path."""
    rows = ["#########", "#.......#", "#.......#", "#########"]
    free = np.array([[ch == "." for ch in row] for row in rows])
    pos = np.array([[1, 1], [1, 4]])
    goals = np.array([[1, 7], [2, 4]])
    planner = PathPlanner(6, "unit")
    plan = planner.reset(free, pos, goals)
    W = free.shape[1]
    straight = [divmod(int(c), W) for c in plan.cells[0] if c >= 0]
    assert (1, 4) in straight  # without dynamic costs, through the other agent
    planner = PathPlanner(6, "follower")
    plan = planner.reset(free, pos, goals)
    for _ in range(4):
        plan = planner.update(pos, goals, np.ones(2, dtype=bool))
    detour = [divmod(int(c), W) for c in plan.cells[0] if c >= 0]
    assert (1, 4) not in detour and detour[-1] == (1, 7)
    for cells in plan.cells:
        xy = np.array([divmod(int(c), W) for c in cells if c >= 0])
        assert free[xy[:, 0], xy[:, 1]].all()


def test_bad_options_are_one_line_errors():
    with pytest.raises(ValueError, match="unknown planner costs 'astar'"):
        PathPlanner(3, "astar")
    with pytest.raises(ValueError, match="plan_radius"):
        PathPlanner(3, plan_radius=2)
    with pytest.raises(ValueError, match="unknown planner_costs 'x'"):
        EnvConfig(name="pogema", planner_costs="x")


def _lifelong(**kw):
    return EnvConfig(
        name="pogema", num_agents=12, size=12, density=0.2, on_target="restart", collision_system="soft", **kw
    )


def test_env_path_channel_is_the_planner_path():
    """The 4th channel is exactly what a separate planner run on the same states draws; the static
    costs are the map's own (not pogema's bordered grid's, whose outer free cells would rescale them)."""
    env = make_env(_lifelong(planner_path=True, obs_radius=3), seed=1)
    obs, _ = env.reset()
    assert obs.shape == (12, 4, 7, 7) and env.observation_space.shape == (12, 4, 7, 7)[1:]
    r = 3
    free = ~env.obstacles
    ref = PathPlanner(r, "follower")
    plan = ref.reset(free, env.agents_xy(), env.targets_xy())
    np.testing.assert_array_equal(env._planner._map.enter, static_costs(free))
    rng = np.random.default_rng(0)
    for t in range(30):
        assert (obs[:, 3] == plan.mask).all(), t
        assert (obs[:, 3, r, r] == 1).all()  # the path starts on the agent's own cell
        assert not (obs[:, 3].astype(bool) & obs[:, 0].astype(bool)).any()  # never on an obstacle
        obs, *_ = env.step(rng.integers(0, 5, 12))
        plan = ref.update(env.agents_xy(), env.targets_xy(), env.active)
    # without the option the observation keeps pogema's three channels
    assert make_env(_lifelong(), seed=1).reset()[0].shape == (12, 3, 11, 11)


def test_follower_reward_pays_the_subgoal_and_never_the_goal():
    env = make_env(_lifelong(reward="follower"), seed=2)
    env.reset()
    W, total = env._W, 0.0
    rng = np.random.default_rng(1)
    for _ in range(120):
        nxt, cur = env._subgoal, env._cur
        follow = rng.random(12) < 0.7  # mostly follow the plan, sometimes do something random
        step = np.stack([nxt // W - cur // W, nxt % W - cur % W], 1)
        a = np.array([MOVES[tuple(s)] for s in step.tolist()])
        a = np.where(follow, a, rng.integers(0, 5, 12))
        before = env._subgoal.copy()
        _, rew, _, _, _ = env.step(a)
        assert set(np.unique(rew)) <= {0.0, np.float32(FOLLOWER_BONUS)}
        np.testing.assert_array_equal(rew > 0, env._cur == before)
        total += rew.sum()
    goals = env._goals_reached
    assert goals > 0 and total > 0  # goals were reached and never paid +1
    assert rew.max() < 1


def test_follower_reward_function():
    reached = np.array([True, False, False, False, False])
    on_goal = np.array([True, True, False, False, False])
    acting = np.array([True, True, True, True, False])
    sub = np.array([True, True, True, False, True])
    r = compute_rewards("follower", reached, on_goal, acting, np.ones(5, bool), None, sub)
    np.testing.assert_allclose(r, [0.01, 0.0, 0.01, 0.0, 0.0])
    with pytest.raises(ValueError, match="on_subgoal"):
        compute_rewards("follower", reached, on_goal, acting, np.ones(5, bool))


@pytest.mark.parametrize("on_target", ["finish", "nothing"])
@pytest.mark.parametrize("radius", [1, 2])
def test_path_channel_in_classic_modes_and_small_windows(on_target, radius):
    """Finished agents (finish) and agents on their goals (nothing) keep a path of their own cell only;
    every drawn path starts on the agent and avoids obstacles, whatever the window size."""
    cfg = EnvConfig(
        name="pogema",
        num_agents=6,
        size=8,
        density=0.2,
        on_target=on_target,
        obs_radius=radius,
        planner_path=True,
        reward="follower",
        max_episode_steps=40,
    )
    env = make_env(cfg, seed=4)
    obs, _ = env.reset()
    r = radius
    W = env._W
    for _ in range(40):
        assert (obs[:, 3, r, r] == 1).all()
        assert not (obs[:, 3].astype(bool) & obs[:, 0].astype(bool)).any()
        done_or_home = ~env.active | (env.agents_xy() == env.targets_xy()).all(1)
        assert (obs[done_or_home, 3].sum((1, 2)) == 1).all()
        step = np.stack([env._subgoal // W - env._cur // W, env._subgoal % W - env._cur % W], 1)
        obs, rew, term, trunc, _ = env.step(np.array([MOVES[tuple(s)] for s in step.tolist()]))
        if term.all() or trunc.all():
            break
    assert rew.max() <= FOLLOWER_BONUS + 1e-7


# ---------------------------------------------------------------- the fast planner vs the old one
def _walk(rng, free, pos, goals, cells, goal_change=0.3):
    """One random step of every agent (into free cells) and sometimes a new goal for one of them."""
    H, W = free.shape
    step = np.array(list(MOVES))[rng.integers(0, 5, len(pos))]
    nxt = np.clip(pos + step, 0, [H - 1, W - 1])
    pos = np.where(free[nxt[:, 0], nxt[:, 1]][:, None], nxt, pos)
    if rng.random() < goal_change:
        goals = goals.copy()
        goals[rng.integers(len(goals))] = cells[rng.integers(len(cells))]
    return pos, goals


def _instance(seed):
    rng = np.random.default_rng(seed)
    H, W = rng.integers(6, 20, 2)
    free = rng.random((H, W)) >= rng.uniform(0.1, 0.4)
    cells = np.argwhere(free)
    A = int(min(len(cells) // 2, rng.integers(1, 20)))
    pick = rng.choice(len(cells), 2 * A, replace=False)
    return rng, free, cells, cells[pick[:A]], cells[pick[A:]]


@pytest.mark.parametrize("compiled", [False, pytest.param(True, marks=needs_numba)])
@pytest.mark.parametrize("seed", range(12))
def test_planner_is_the_old_planner_bit_for_bit(seed, compiled):
    """replan_every=1 gives exactly what the implementation before the successor tables gave (kept in
    tests/guidance_reference.py): same drawn masks, sub-goals, costs and path cells, with goal changes,
    inactive agents and planning windows wider than the drawing window; numpy and numba alike."""
    rng, free, cells, pos, goals = _instance(seed)
    r = int(rng.integers(1, 5))
    R = r + int(rng.integers(0, 3)) * (seed % 2)
    costs = PLANNER_COSTS[seed % 3]
    new = PathPlanner(r, costs, plan_radius=R, compiled=compiled)
    old = ref.PathPlanner(r, costs, plan_radius=R)
    a, b = new.reset(free, pos, goals), old.reset(free, pos, goals)
    W = free.shape[1]
    for t in range(25):
        np.testing.assert_array_equal(a.mask, b.mask, err_msg=f"t={t}")
        np.testing.assert_array_equal(a.next_cell, b.next_cell)
        np.testing.assert_array_equal(a.cost, b.cost)
        for i in range(len(pos)):
            path_a, path_b = a.cells[i][a.cells[i] >= 0], b.cells[i][b.cells[i] >= 0]
            if R == r:  # the old path ran to the planning window's exit, the new one to the drawing window's
                np.testing.assert_array_equal(path_a, path_b)
            else:
                xy = [divmod(int(c), W) for c in path_a]
                assert (
                    path_b[: len(path_a)].tolist() == path_a.tolist()
                    or max(max(abs(x - pos[i][0]), abs(y - pos[i][1])) for x, y in xy) == r + 1
                )
        pos, goals = _walk(rng, free, pos, goals, cells)
        active = rng.random(len(pos)) < 0.9
        a, b = new.update(pos, goals, active), old.update(pos, goals, active)


@pytest.mark.parametrize("compiled", [False, pytest.param(True, marks=needs_numba)])
@pytest.mark.parametrize("seed", range(6))
def test_static_costs_are_the_old_ones_bit_for_bit(seed, compiled):
    """The bit-parallel BFS (numpy) and the per-source BFS (numba) give the scipy all-pairs result
    exactly (several components, isolated cells)."""
    rng = np.random.default_rng(seed)
    free = rng.random(tuple(rng.integers(3, 40, 2))) >= rng.uniform(0.2, 0.6)
    np.testing.assert_array_equal(static_costs(free, compiled=compiled), ref.static_costs(free))


@pytest.mark.parametrize("costs", ["follower", "unit"])
@pytest.mark.parametrize("seed", range(4))
def test_follower_lite_planner_is_unchanged(costs, seed):
    """FollowerLite's AStarPlanner on the rewritten static costs and goal fields: the old plans exactly."""
    rng, free, cells, pos, goals = _instance(100 + seed)
    r = int(rng.integers(1, 6))
    new, old = AStarPlanner(r, costs), ref.AStarPlanner(r, costs)
    a, b = new.reset(free, pos, goals), old.reset(free, pos, goals)
    for _ in range(15):
        for f in ("mask", "cells", "next_cell", "cost"):
            np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
        pos, goals = _walk(rng, free, pos, goals, cells)
        active = rng.random(len(pos)) < 0.9
        a, b = new.update(pos, goals, active), old.update(pos, goals, active)


# ---------------------------------------------------------------- re-planning every k steps
def _reference_from(free, enter, dyn, start, goal, centre, R, inside=True):
    """Slow reference for a plan read between solves: the cheapest path from ``start`` where entering v
    costs enter[v] + dyn[v] until the path first leaves the window of radius R around ``centre`` (the
    agent's cell at the solve), enter[v] after; ``start`` outside that window (or ``inside=False``: the
    path has left it before) plans statically."""
    H, W = free.shape

    def within(x, y):
        return max(abs(x - centre[0]), abs(y - centre[1])) <= R

    s0 = inside and within(*start)
    best = {(start, s0): 0.0}
    heap = [(0.0, start, s0)]
    while heap:
        d, (x, y), inside = heapq.heappop(heap)
        if (x, y) == goal:
            return d
        if d > best[((x, y), inside)]:
            continue
        for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            nx, ny = x + dx, y + dy
            if not (0 <= nx < H and 0 <= ny < W and free[nx, ny]):
                continue
            still = inside and within(nx, ny)
            nd = d + enter[nx, ny] + (dyn[nx, ny] if still else 0.0)
            if nd < best.get(((nx, ny), still), np.inf):
                best[((nx, ny), still)] = nd
                heapq.heappush(heap, (nd, (nx, ny), still))
    return np.inf


@pytest.mark.parametrize("k", [2, 3, 9])
@pytest.mark.parametrize("seed", range(3))
def test_replan_every_k_solves_every_kth_step_and_follows_that_plan_between(k, seed):
    """With replan_every=k the counts grow every step; on every k-th step the plans are those of k=1;
    in between, each agent's path is a cheapest path from where it stands under the counts and window
    of the last solve (static after a goal change, or once the agent strays beyond that window), a real
    path through free cells, drawn until it leaves the agent's current window."""
    rng, free, cells, pos, goals = _instance(200 + seed)
    r = 2
    fast, every = PathPlanner(r, replan_every=k), PathPlanner(r)
    a, b = fast.reset(free, pos, goals), every.reset(free, pos, goals)
    H, W = free.shape
    p = fast.pad
    enter = fast._map.enter
    snap, centre, fresh = fast._dyn.copy(), pos.copy(), np.zeros(len(pos), dtype=bool)
    for t in range(1, 3 * k + 2):
        old_goals = goals
        pos, goals = _walk(rng, free, pos, goals, cells, goal_change=0.5)
        active = np.ones(len(pos), dtype=bool)
        a, b = fast.update(pos, goals, active), every.update(pos, goals, active)
        np.testing.assert_array_equal(fast._dyn, every._dyn)  # the counts never wait
        fresh |= (goals != old_goals).any(1)
        if t % k == 0:
            for f in ("mask", "next_cell", "cost"):
                np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
            snap, centre, fresh = fast._dyn.copy(), pos.copy(), np.zeros(len(pos), dtype=bool)
            continue
        for i in range(len(pos)):
            static = fresh[i] or max(abs(pos[i] - centre[i])) > fast.R + 1
            dyn = np.zeros_like(enter) if static else snap[i, p:-p, p:-p]
            want = _reference_from(free, enter, dyn, tuple(pos[i]), tuple(goals[i]), tuple(centre[i]), fast.R)
            if not np.isfinite(want):
                assert not np.isfinite(a.cost[i]) and (a.cells[i, 1:] < 0).all()
                continue
            assert a.cost[i] == pytest.approx(want, rel=1e-5, abs=1e-3)
            xy = [divmod(int(c), W) for c in a.cells[i] if c >= 0]
            assert xy[0] == tuple(pos[i])
            cost, inside = 0.0, max(abs(pos[i] - centre[i])) <= fast.R and not static
            for (ax, ay), (bx, by) in zip(xy, xy[1:]):
                assert abs(ax - bx) + abs(ay - by) == 1 and free[bx, by]
                inside = inside and max(abs(bx - centre[i][0]), abs(by - centre[i][1])) <= fast.R
                cost += enter[bx, by] + (dyn[bx, by] if inside else 0.0)
            if xy[-1] != tuple(goals[i]):
                assert max(abs(xy[-1][0] - pos[i][0]), abs(xy[-1][1] - pos[i][1])) == r + 1
                cost += _reference_from(
                    free, enter, dyn, xy[-1], tuple(goals[i]), tuple(centre[i]), fast.R, inside
                )
            assert cost == pytest.approx(want, rel=1e-5, abs=1e-3)
            want_mask = np.zeros((2 * r + 1, 2 * r + 1), dtype=bool)
            for x, y in xy:
                if max(abs(x - pos[i][0]), abs(y - pos[i][1])) > r:
                    break
                want_mask[x - pos[i][0] + r, y - pos[i][1] + r] = True
            np.testing.assert_array_equal(a.mask[i], want_mask)


def test_replan_every_bad_values_are_one_line_errors():
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(ValueError, match="replan_every=") as e:
            PathPlanner(3, replan_every=bad)
        assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="planner_replan_every=0"):
        EnvConfig(name="pogema", planner_replan_every=0)


def test_env_path_channel_with_replan_every():
    """The env passes planner_replan_every to its planner: its channel is a separate k=3 planner's."""
    env = make_env(_lifelong(planner_path=True, obs_radius=3, planner_replan_every=3), seed=5)
    obs, _ = env.reset()
    ref_planner = PathPlanner(3, "follower", replan_every=3)
    plan = ref_planner.reset(~env.obstacles, env.agents_xy(), env.targets_xy())
    rng = np.random.default_rng(0)
    for t in range(20):
        assert (obs[:, 3] == plan.mask).all(), t
        assert not (obs[:, 3].astype(bool) & obs[:, 0].astype(bool)).any()
        obs, *_ = env.step(rng.integers(0, 5, 12))
        plan = ref_planner.update(env.agents_xy(), env.targets_xy(), env.active)
