"""Windowed PIBT (kind ``wpibt``): the windowed space-time search honours reservations and is optimal
when nothing is reserved; the planner never conflicts and clears dead ends like PIBT."""

from __future__ import annotations

import numpy as np
import pytest
from test_planners_pibt_deadends import room_with_dead_ends, simulate

from agents.eval.episode import Instance, PogemaEpisodeEnv, run_episode
from agents.planners.grid import GridGraph
from agents.planners.windowed import WindowedPIBT, windowed_path


def _graph(rows: str) -> GridGraph:
    return GridGraph(np.array([[c == "#" for c in r] for r in rows.split("\n")], dtype=np.int64))


def test_windowed_path_is_a_shortest_path_when_nothing_is_reserved():
    g = _graph("......\n.####.\n......")
    start, goal = g.cell((0, 0)), g.cell((2, 5))
    dist = g.distances_from(goal)
    path = windowed_path(g, start, goal, dist, 16, set(), set())
    assert len(path) == dist[start] == 7 and path[-1] == goal
    short = windowed_path(g, start, goal, dist, 3, set(), set())
    assert short == path[:3]  # the window cuts the same path


def test_windowed_path_avoids_reserved_cells_and_oncoming_moves():
    g = _graph(".....")
    c = [g.cell((0, y)) for y in range(5)]
    dist = g.distances_from(c[4])
    # a higher-priority agent stands on c2 for two steps: wait, then go
    path = windowed_path(g, c[0], c[4], dist, 8, {(c[2], 1), (c[2], 2)}, set())
    assert all(not (cell == c[2] and t in (1, 2)) for t, cell in enumerate(path, start=1))
    assert path[-1] == c[4] and len(path) == 5
    # it comes from c1 into c0 at step 1: moving c0 -> c1 then would swap with it
    assert windowed_path(g, c[0], c[4], dist, 8, set(), {(c[1], c[0], 1)})[0] == c[0]


def test_windowed_pibt_never_conflicts_and_clears_dead_ends():
    for seed in range(12):
        rng = np.random.default_rng(seed)
        obstacles = room_with_dead_ends(rng, int(rng.integers(4, 8)))
        if (obstacles == 0).sum() < 7:
            continue
        worst_block, worst_wait = simulate(obstacles, 4, seed, 200, WindowedPIBT())
        assert worst_block <= 120 and worst_wait <= 200, (seed, worst_block, worst_wait)


@pytest.mark.parametrize("on_target", ["restart", "nothing"])
def test_windowed_pibt_in_pogema(on_target):
    inst = Instance("t", "m", "\n".join(["........"] * 8), 12, 1, on_target, 64, "soft", 5)
    metrics, _ = run_episode(PogemaEpisodeEnv(inst), WindowedPIBT(), seed=0)
    if on_target == "nothing":
        assert metrics["CSR"] == 1.0
    else:
        assert metrics["avg_throughput"] > 0.5


def test_window_must_be_positive():
    with pytest.raises(ValueError, match="window=0 must be >= 1"):
        WindowedPIBT(window=0)
