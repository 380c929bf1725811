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


def _known_map(seed: int, shape=(9, 11), density=0.3):
    rng = np.random.default_rng(seed)
    blocked = (rng.random(shape) < density).astype(np.uint8)
    return rng, blocked


@pytest.mark.parametrize("seed", range(6))
def test_shortest_path_against_bfs(seed):
    """Our A* (the fast path) against the plain BFS: as long as the shortest path, valid, or [] if none."""
    from agents.planners.astar import grid_neighbors, shortest_path
    from agents.planners.grid import UNREACHABLE, GridGraph

    rng, blocked = _known_map(seed)
    H, W = blocked.shape
    nbrs = grid_neighbors(H, W)
    graph = GridGraph(blocked)
    free = np.flatnonzero(blocked.ravel() == 0)
    for _ in range(20):
        start, goal = (int(c) for c in rng.choice(free, 2))
        path = shortest_path(nbrs, bytearray(blocked.ravel().tobytes()), W, start, goal, 10_000)
        d = graph.distances_from_python(goal)[start]
        if d >= UNREACHABLE:
            assert path == []
            continue
        assert len(path) == d and (not path or path[-1] == goal)
        for a, b in zip([start, *path], path):
            assert b in nbrs[a] and not blocked.ravel()[b]


@pytest.mark.parametrize("seed", range(3))
def test_kept_paths_are_as_short_as_searching_every_step(seed):
    """Paths kept between steps against searching again every step on the same remembered map."""
    from agents.planners.astar import shortest_path

    inst = Instance(
        "t", "m", "\n".join(["..#....#..", "..#.##.#..", ".........."] * 3), 6, seed, "restart", 40, "soft", 2
    )
    env, algo = PogemaEpisodeEnv(inst), AStar()
    state = env.reset()
    algo.reset(state, seed)
    checked = 0
    for _ in range(40):
        actions = algo.act(state)
        W = state.obstacles.shape[1]
        for i, (x, y) in enumerate(state.positions.tolist()):
            here = x * W + y
            if algo.path_from[i] != here or algo.prev[i] != here:
                continue  # a random action this step (the agent did not move last step)
            goal = int(state.goals[i, 0]) * W + int(state.goals[i, 1])
            fresh = shortest_path(algo.nbrs, algo.known[i], W, here, goal, 10_000)
            assert len(algo.paths[i]) == len(fresh)
            checked += 1
        state, done = env.step(actions)
        if done:
            break
    assert checked > 40


def test_astar_waits_then_acts_randomly_like_pogemas_agent():
    """Head-on in a corridor neither can pass: after a step without moving, both take random actions
    (pogema's rule), so they do not stand still for ever."""
    inst = Instance("t", "m", ".....", 2, 0, "nothing", 12, "soft", 5, [[0, 1], [0, 3]], [[0, 4], [0, 0]])
    env, algo = PogemaEpisodeEnv(inst), AStar()
    state = env.reset()
    algo.reset(state, 0)
    seen = []
    for _ in range(8):
        actions = algo.act(state)
        seen.append(actions.tolist())
        state, _ = env.step(actions)
    assert seen[0] == [4, 3]  # both step towards each other
    assert any(a not in (0, 3, 4) for step in seen[2:] for a in step)  # random actions appear


def test_pogema_reference_and_ours_agree_on_a_single_agent():
    from agents.planners.astar import PogemaAStar

    maze = "..#....\n..#.##.\n.......\n####.#.\n......."
    inst = Instance("t", "m", maze, 1, 0, "nothing", 64, "soft", 5, [[0, 0]], [[4, 0]])
    ours, _ = run_episode(PogemaEpisodeEnv(inst), AStar(), seed=0)
    ref, _ = run_episode(PogemaEpisodeEnv(inst), PogemaAStar(), seed=0)
    assert ours["CSR"] == ref["CSR"] == 1.0 and ours["SoC"] == ref["SoC"] == 12
