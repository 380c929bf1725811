"""``generator: mixed``: random maps and mazes drawn per episode from the env's seed stream."""

from __future__ import annotations

import numpy as np

from envs import make_env
from envs.config import EnvConfig


def _cfg(**kw):
    return EnvConfig(name="pogema", num_agents=8, size=15, on_target="restart", collision_system="soft", **kw)


def test_mixed_draws_both_kinds_reproducibly():
    env = make_env(_cfg(generator="mixed"), seed=3)
    kinds, maps = [], []
    for _ in range(12):
        env.reset()
        kinds.append(env.episode.labels["map_name"].split("-")[0])
        maps.append(env.obstacles)
    assert set(kinds) == {"random", "maze"}
    again = make_env(_cfg(generator="mixed"), seed=3)
    for k, m in zip(kinds, maps):
        again.reset()
        assert again.episode.labels["map_name"].split("-")[0] == k
        np.testing.assert_array_equal(again.obstacles, m)


def test_mixed_episode_equals_the_pure_generator_with_its_seed():
    """A mixed episode is exactly the maze (or random map) of the same episode seed."""
    env = make_env(_cfg(generator="mixed"), seed=0)
    for _ in range(6):
        env.reset()
        kind = env.episode.labels["map_name"].split("-")[0]
        pure = make_env(_cfg(generator="maze" if kind == "maze" else "random"), seed=env.episode.seed)
        pure.reset()
        np.testing.assert_array_equal(pure.obstacles, env.obstacles)


def test_maze_loops_choices_are_drawn_per_maze():
    import pytest

    from envs.maps import maze_map

    env = make_env(_cfg(generator="maze", maze_loops_choices=[0.0, 1.0]), seed=5)
    drawn = []
    for _ in range(12):
        env.reset()
        loops = env.episode.labels["maze_loops"]
        drawn.append(loops)
        # the maze of the episode seed with the drawn share: the slow reference
        want = maze_map(15, 15, np.random.default_rng(env.episode.seed), loops)
        np.testing.assert_array_equal(env.obstacles, want.astype(env.obstacles.dtype))
    assert set(drawn) == {0.0, 1.0}
    with pytest.raises(
        ValueError, match=r"maze_loops_choices\[1\]=1.5 is out of range; allowed: 0 <= value <= 1"
    ):
        _cfg(generator="maze", maze_loops_choices=[0.2, 1.5])
