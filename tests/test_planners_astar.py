"""pogema's A* agent wrapper: the observations we rebuild equal pogema's own, and it solves trivial
instances."""

from __future__ import annotations

import numpy as np
import pytest

from agents.eval.episode import Instance, PogemaEpisodeEnv, run_episode
from agents.planners.astar import AStar, pomapf_observations

OPEN_8 = "\n".join(["........"] * 8)


def test_rebuilt_observations_equal_pogemas_own():
    """Fast path (from positions/goals arrays) against the reference (pogema's POMAPF observations).

    One known difference: pogema 1.4.0's ``soft`` collisions can erase a *following* agent from its
    occupancy map (the agent ahead, moved later in index order, clears the cell the follower just
    entered), so pogema's ``agents`` window may miss agents that really are there; ours never does.
    """
    inst = Instance("t", "m", OPEN_8.replace("........", "..#.....", 2), 6, 4, "restart", 20, "soft", 3)
    env = PogemaEpisodeEnv(inst)
    state = env.reset()
    starts = state.positions.copy()
    rng = np.random.default_rng(0)
    for _ in range(20):
        ours = pomapf_observations(state, starts)
        for mine, ref in zip(ours, state.observations):
            np.testing.assert_array_equal(mine["obstacles"], ref["obstacles"])
            assert np.all(mine["agents"] >= ref["agents"]), "pogema sees an agent that is not there"
            assert mine["agents"][inst.obs_radius, inst.obs_radius] == 1.0  # itself, at the centre
            assert tuple(mine["xy"]) == tuple(ref["xy"]) and tuple(mine["target_xy"]) == tuple(
                ref["target_xy"]
            )
        state, done = env.step(rng.integers(5, size=inst.num_agents))
        if done:
            break


@pytest.mark.parametrize("n", [1, 3])
def test_astar_solves_trivial_classic(n):
    inst = Instance("t", "m", OPEN_8, n, 0, "nothing", 64, "soft", 5)
    metrics, _ = run_episode(PogemaEpisodeEnv(inst), AStar(), seed=0)
    assert metrics["CSR"] == 1.0


def test_astar_single_agent_takes_a_shortest_path():
    corridor = "......"
    inst = Instance("t", "m", corridor, 1, 0, "nothing", 20, "soft", 5, [[0, 0]], [[0, 5]])
    metrics, _ = run_episode(PogemaEpisodeEnv(inst), AStar(), seed=0)
    assert metrics["SoC"] == 5 and metrics["makespan"] == 5


def test_astar_is_deterministic_per_seed():
    inst = Instance("t", "m", OPEN_8, 16, 2, "restart", 48, "soft", 5)
    a, _ = run_episode(PogemaEpisodeEnv(inst), AStar(), seed=7)
    b, _ = run_episode(PogemaEpisodeEnv(inst), AStar(), seed=7)
    assert a["avg_throughput"] == b["avg_throughput"]
