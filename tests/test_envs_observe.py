"""The two observation paths (slices for few agents, one gather for many) against each other."""

from __future__ import annotations

import numpy as np
import pytest

from envs import make_env
from envs.config import EnvConfig


@pytest.mark.parametrize("radius", [1, 2, 5, 9])
@pytest.mark.parametrize("agents", [1, 3, 12])
def test_sliced_equals_gathered(radius, agents):
    env = make_env(
        EnvConfig(
            name="pogema",
            num_agents=agents,
            size=9,
            density=0.25,
            obs_radius=radius,
            on_target="finish",
            collision_system="soft",
        ),
        seed=radius,
    )
    env.reset()
    rng = np.random.default_rng(0)
    for _ in range(30):
        np.testing.assert_array_equal(env._observe_sliced(), env._observe_gathered())
        *_, term, trunc, _ = env.step(rng.integers(0, 5, size=agents))
        if term.all() or trunc.all():
            env.reset()


def test_goal_channel_projects_far_goals_onto_the_border():
    env = make_env(EnvConfig(name="pogema", num_agents=1, map="a........A", obs_radius=2), seed=0)
    obs, _ = env.reset()
    goal = obs[0, 2]
    assert goal.sum() == 1 and goal[2, 4] == 1  # goal 9 cells to the right: middle row, right edge
    # pogema's border: one ring of walls just outside the map, empty cells beyond it
    expected = [[0, 0, 0, 0, 0], [0, 1, 1, 1, 1], [0, 1, 0, 0, 0], [0, 1, 1, 1, 1], [0, 0, 0, 0, 0]]
    np.testing.assert_array_equal(obs[0, 0], expected)
    assert obs[0, 1].sum() == 1 and obs[0, 1, 2, 2] == 1  # the agent sees itself at the centre
