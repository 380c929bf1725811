"""The fast paths of issue 11 (decision time on 256 agents x 256x256 maps) against their slow references:
identical results, not merely close ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agents.eval.episode import Instance, PogemaEpisodeEnv
from agents.planners import follower_planner as FP
from agents.planners.compiled import HAVE_NUMBA
from agents.planners.grid import GridGraph
from agents.planners.windowed import (
    WindowedPIBT,
    WindowedPIBTReference,
    windowed_path,
    windowed_path_fast,
)
from envs.guidance import AStarPlanner, static_costs


def random_map(rng: np.random.Generator, h: int, w: int, density: float) -> str:
    return "\n".join("".join("#" if rng.random() < density else "." for _ in range(w)) for _ in range(h))


def same_actions(make_fast, make_ref, inst: Instance, seed: int) -> int:
    """Run two algorithms side by side on one instance; assert equal actions every step; return steps."""
    env_a, env_b = PogemaEpisodeEnv(inst), PogemaEpisodeEnv(inst)
    sa, sb = env_a.reset(), env_b.reset()
    a, b = make_fast(), make_ref()
    a.reset(sa, seed)
    b.reset(sb, seed)
    done, steps = False, 0
    while not done:
        xa, xb = a.act(sa), b.act(sb)
        np.testing.assert_array_equal(xa, xb, err_msg=f"step {steps}")
        sa, done = env_a.step(xa)
        sb, _ = env_b.step(xb)
        steps += 1
    return steps


@pytest.mark.parametrize("seed", range(6))
def test_windowed_path_fast_matches_the_tuple_search(seed):
    """Random reservations (vertex and edge), random windows, every start/goal pair of a few cells."""
    rng = np.random.default_rng(seed)
    obstacles = (rng.random((9, 11)) < 0.25).astype(np.int64)
    g = GridGraph(obstacles)
    N = obstacles.size
    free = np.flatnonzero(obstacles.ravel() == 0).tolist()
    for _ in range(40):
        window = int(rng.integers(1, 9))
        vertex_t, edges_t = set(), set()
        for _ in range(int(rng.integers(0, 25))):
            c, t = int(rng.choice(free)), int(rng.integers(1, window + 1))
            vertex_t.add((c, t))
            if g.neighbors[c]:
                edges_t.add((int(rng.choice(g.neighbors[c])), c, t))
        vertex = {t * N + c for c, t in vertex_t}
        edges = {(t * N + a) * N + b for a, b, t in edges_t}
        start, goal = (int(x) for x in rng.choice(free, 2))
        dist = g.distances_from(goal)
        budget = int(rng.choice([3, 2000]))  # a tiny budget stops both searches alike
        ref = windowed_path(g, start, goal, dist, window, vertex_t, edges_t, budget)
        fast = windowed_path_fast(g.neighbors, N, start, goal, dist, window, vertex, edges, budget)
        assert fast == ref, (start, goal, window)


@pytest.mark.parametrize("seed", range(8))
def test_wpibt_acts_exactly_as_the_reference(seed):
    rng = np.random.default_rng(100 + seed)
    h, w = (int(x) for x in rng.integers(6, 16, 2))
    num_agents = int(rng.integers(2, 24))
    on_target = "restart" if seed % 2 == 0 else "nothing"
    inst = Instance("t", "m", random_map(rng, h, w, 0.2), num_agents, seed, on_target, 48, "soft", 5)
    window = int(rng.integers(1, 17))
    try:
        PogemaEpisodeEnv(inst).reset()
    except Exception:  # noqa: BLE001 - pogema cannot place this many agents on this map
        pytest.skip("pogema cannot place the agents on this random map")
    steps = same_actions(lambda: WindowedPIBT(window), lambda: WindowedPIBTReference(window), inst, seed)
    assert steps > 0


# ----------------------------------------------------------------------------- FollowerLite's planner
needs_numba = pytest.mark.skipif(not HAVE_NUMBA, reason="numba (the 'fast' extra) not installed")
CKPT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "follower-lite"
CKPT = CKPT / "checkpoint_000001248_20447232.pth"


def assert_same_plan(a, b, where) -> None:
    for name in ("mask", "cells", "next_cell"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=f"{name} at {where}")
    # the same floats summed in the same order; Python >= 3.12's sum() compensates, hence the tolerance
    np.testing.assert_allclose(a.cost, b.cost, rtol=1e-12, err_msg=f"cost at {where}")


@needs_numba  # without numba the kernels run as (very slow) Python
@pytest.mark.parametrize("shape, density", [((5, 7), 0.3), ((13, 17), 0.25), ((24, 9), 0.4), ((72, 70), 0.1)])
def test_static_costs_compiled_are_identical(shape, density):
    """Exact all-pairs averages on small maps, the 1024-target sample beyond 4096 free cells (72x70)."""
    free = np.random.default_rng(shape[0]).random(shape) > density
    np.testing.assert_array_equal(FP.static_costs_compiled(free), static_costs(free, compiled=False))


@needs_numba  # without numba the kernels run as (very slow) Python
@pytest.mark.parametrize("costs", ["follower", "unit"])
def test_goal_fields_are_scipys_floats(costs):
    """Both compiled Dijkstras (heap, buckets) give MapCosts' (scipy's) cost-to-go bit for bit."""
    from agents.planners.compiled import dijkstra_buckets, dijkstra_to
    from envs.guidance import MapCosts

    rng = np.random.default_rng(3)
    free = rng.random((19, 23)) > 0.3
    ref, m = MapCosts(free, costs, compiled=False), FP._CompiledMap(free, costs)
    out = np.empty(free.size)
    for goal in rng.choice(np.flatnonzero(free.ravel()), 8, replace=False).tolist():
        want = ref.to_goal([goal])[0].ravel()
        assert dijkstra_to(m.table, m.enter_flat, goal, out, *m._heap)
        np.testing.assert_array_equal(out, want)
        assert dijkstra_buckets(m.table, m.enter_flat, goal, out)
        np.testing.assert_array_equal(out, want)
        np.testing.assert_array_equal(m.field(goal), want)
    low = m.enter_flat.copy()
    low[np.flatnonzero(free.ravel())[0]] = 0.5  # an entry cost below 1: the buckets refuse
    assert not dijkstra_buckets(m.table, low, goal, out)


@needs_numba  # without numba the kernels run as (very slow) Python
@pytest.mark.parametrize("seed", range(9))
def test_compiled_astar_planner_plans_exactly_as_astar_planner(seed):
    """Random maps, agents that jump, change goals and drop out; every cost kind (unit costs tie
    everywhere: the tie rule must match too) with and without forgetting counts on a new goal."""
    rng = np.random.default_rng(seed)
    h, w = (int(x) for x in rng.integers(4, 24, 2))
    free = rng.random((h, w)) > 0.3
    cells = np.argwhere(free)
    if len(cells) < 3:
        free[:] = True
        cells = np.argwhere(free)
    A = int(rng.integers(1, min(len(cells), 16)))
    costs = ("follower", "static", "unit")[seed % 3]
    reset_dynamic = seed % 4 != 1
    fast = FP.CompiledAStarPlanner(2 + seed % 3, costs, reset_dynamic=reset_dynamic)
    ref = AStarPlanner(2 + seed % 3, costs, reset_dynamic=reset_dynamic)
    pos = cells[rng.choice(len(cells), A, replace=False)]
    goals = cells[rng.choice(len(cells), A)]
    assert_same_plan(fast.reset(free, pos, goals), ref.reset(free, pos, goals), "reset")
    for t in range(25):
        pos = np.where(rng.random((A, 1)) < 0.7, cells[rng.choice(len(cells), A)], pos)
        goals = np.where(rng.random((A, 1)) < 0.15, cells[rng.choice(len(cells), A)], goals)
        active = rng.random(A) < 0.9
        assert_same_plan(fast.update(pos, goals, active), ref.update(pos, goals, active), f"step {t}")


@needs_numba  # without numba the kernels run as (very slow) Python
def test_compiled_planner_with_too_small_buffers_grows_them():
    rng = np.random.default_rng(7)
    free = rng.random((15, 15)) > 0.2
    cells = np.argwhere(free)
    pos, goals = cells[:6], cells[-6:]
    fast, ref = FP.CompiledAStarPlanner(3), AStarPlanner(3)
    m = fast._get_map(free)
    m._heap = m._new_heap(2)  # too small for Dijkstra and A*: fields regrow it, one A* runs in Python
    assert_same_plan(fast.reset(free, pos, goals), ref.reset(free, pos, goals), "reset")
    m._heap = m._new_heap(2)
    m.flat = np.zeros(1, dtype=np.int64)  # too small for a path, too: it grows as well
    active = np.ones(6, dtype=bool)
    assert_same_plan(fast.update(pos, goals[::-1], active), ref.update(pos, goals[::-1], active), "update")
    assert len(m._heap[0]) > 2 and len(m.flat) > free.size


@needs_numba  # without numba the kernels run as (very slow) Python
def test_goal_field_pool_drops_unused_goals_only():
    """A pool smaller than the goals in use grows; goals no agent plans for are dropped first."""
    rng = np.random.default_rng(11)
    free = rng.random((12, 12)) > 0.2
    cells = np.argwhere(free)
    fast, ref = FP.CompiledAStarPlanner(3), AStarPlanner(3)
    m = fast._get_map(free)
    m._max_fields = 2
    pos, goals = cells[:3], cells[-3:]
    assert_same_plan(fast.reset(free, pos, goals), ref.reset(free, pos, goals), "reset")
    assert len(m.pool) >= 3  # three goals in use: no eviction, the pool grew
    active = np.ones(3, dtype=bool)
    for t in range(6):
        goals = goals.copy()
        goals[t % 3] = cells[rng.integers(len(cells))]
        assert_same_plan(fast.update(pos, goals, active), ref.update(pos, goals, active), f"step {t}")
        in_use = {int(x) * 12 + int(y) for x, y in goals}
        assert in_use <= set(m._slot_of) and len(set(fast._slot.tolist())) == len(in_use)


def test_compiled_planner_bad_inputs():
    free = np.ones((4, 4), dtype=bool)
    free[1, 1] = False
    with pytest.raises(ValueError, match=r"goal cell \(1, 1\) is an obstacle"):
        FP.CompiledAStarPlanner(2).reset(free, np.array([[0, 0]]), np.array([[1, 1]]))
    with pytest.raises(ValueError, match="radius=0"):
        FP.CompiledAStarPlanner(0)
    with pytest.raises(ValueError, match="unknown planner costs"):
        FP.CompiledAStarPlanner(2, "nope")
    with pytest.raises(RuntimeError, match="reset"):
        FP.CompiledAStarPlanner(2).update(np.zeros((1, 2)), np.zeros((1, 2)), np.ones(1, dtype=bool))


def test_follower_lite_planner_choice(monkeypatch):
    assert isinstance(FP.make_follower_planner(5, "follower", True), FP.CompiledAStarPlanner) == HAVE_NUMBA
    monkeypatch.setattr(FP, "HAVE_NUMBA", False)
    assert isinstance(FP.make_follower_planner(5, "follower", True), AStarPlanner)


@needs_numba
@pytest.mark.skipif(not CKPT.is_file(), reason="../shared/data/follower-lite not available")
@pytest.mark.parametrize("seed", range(3))
def test_follower_lite_acts_exactly_as_with_the_python_planner(seed):
    from agents.planners.follower_lite import FollowerLite

    rng = np.random.default_rng(200 + seed)
    on_target = "restart" if seed < 2 else "nothing"
    inst = Instance("t", "m", random_map(rng, 16, 16, 0.25), 12 + 8 * seed, seed, on_target, 48, "soft", 5)

    def with_python_planner():
        agent = FollowerLite.from_checkpoint(CKPT)
        spec = agent.spec
        agent.planner = AStarPlanner(spec.obs_radius, "follower", reset_dynamic=spec.reset_dynamic_cost)
        return agent

    fast = lambda: FollowerLite.from_checkpoint(CKPT)  # noqa: E731
    assert isinstance(fast().planner, FP.CompiledAStarPlanner)
    assert same_actions(fast, with_python_planner, inst, seed) == 48


BENCH = CKPT.parents[1] / "pogema-benchmark"


@needs_numba
@pytest.mark.skipif(not (CKPT.is_file() and BENCH.is_dir()), reason="../shared/data not available")
@pytest.mark.parametrize("map_set", ["01-random", "02-mazes"])
def test_follower_lite_benchmark_episodes_unchanged(map_set):
    """A frozen benchmark scenario of each shipped set, 32 agents, lifelong: the same actions every step."""
    from agents.eval.benchmark import build_instances, load_map_set, resolve_map_set
    from agents.eval_config import EvalConfig
    from agents.planners.follower_lite import FollowerLite

    ms = load_map_set(resolve_map_set(map_set, "lifelong", str(BENCH)))
    inst = build_instances(ms, EvalConfig(num_agents=[32], max_maps=1, max_episode_steps=64))[0]

    def with_python_planner():
        agent = FollowerLite.from_checkpoint(CKPT)
        agent.planner = AStarPlanner(agent.spec.obs_radius, "follower")
        return agent

    assert same_actions(lambda: FollowerLite.from_checkpoint(CKPT), with_python_planner, inst, 0) == 64


# ----------------------------------------------------------------------------- srmt eval eval/timing-256
def test_timing_config_loads_and_names_the_largest_instances():
    from agents.eval.api import load_eval_config
    from agents.eval.benchmark import build_instances, load_map_set, resolve_map_set

    cfg = load_eval_config("eval/timing-256", [])
    assert cfg.run == ["AStar", "PIBT", "WPIBT", "FollowerLite", "Random"] and cfg.workers == 1
    assert cfg.published_runtimes == {"Follower on 04-movingai": 31.0}
    ms = load_map_set(resolve_map_set(cfg.map_sets[0], cfg.mode, cfg.benchmark_dir))
    insts = build_instances(ms, cfg)
    assert [(i.num_agents, i.seed, i.max_episode_steps) for i in insts] == [(256, 0, 256), (256, 1, 256)]
    assert {len(row) for row in insts[0].map.split("\n")} == {256} and len(insts[0].map.split("\n")) == 256


def test_published_runtimes_are_rows_of_the_runtime_table(tmp_path):
    from agents.eval.api import evaluate, load_eval_config

    overrides = [f"out_dir={tmp_path}", "run=[Random]", "progress=false", "plots=false"]
    cfg = load_eval_config("eval/smoke", [*overrides, "published_runtimes.Ref=12.5"])
    out = evaluate(cfg, echo=False)
    runtime_table = out["report"].split("runtime_ms_per_step")[1]
    assert "| Ref (published) | 12.5" in runtime_table
    assert "Ref (published)" not in out["report"].split("runtime_ms_per_step")[0]  # not a throughput row
    assert "Ref (published): a published decision time" in (tmp_path / "summary.md").read_text()


def test_published_runtimes_must_be_positive():
    from agents.eval.api import load_eval_config
    from configs import ConfigError

    with pytest.raises(ConfigError, match=r"published_runtimes \{'X': 0.0\} must be > 0"):
        load_eval_config("eval/smoke", ["published_runtimes.X=0"])
