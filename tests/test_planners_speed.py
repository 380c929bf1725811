"""The fast paths of issue 11 (decision time on 256 agents x 256x256 maps) against their slow references:
identical results, not merely close ones."""

from __future__ import annotations

import numpy as np
import pytest

from agents.eval.episode import Instance, PogemaEpisodeEnv
from agents.planners.grid import GridGraph
from agents.planners.windowed import (
    WindowedPIBT,
    WindowedPIBTReference,
    windowed_path,
    windowed_path_fast,
)


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
