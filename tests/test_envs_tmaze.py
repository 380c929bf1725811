"""The T-Maze memory task (envs/tmaze.py): cue only at step 0, reward only at the junction, options."""

from __future__ import annotations

import numpy as np
import pytest

from envs import make_env
from envs.config import EnvConfig
from envs.tmaze import CUE_DOWN, CUE_UP, DOWN, JUNCTION, LEFT, RIGHT, STAY, UP, tmaze_config


def test_cue_only_at_step_zero_and_junction_flag():
    env = make_env(tmaze_config(5, num_agents=64), seed=0)
    obs, _ = env.reset()
    cues = env.cues
    assert set(cues.tolist()) == {UP, DOWN}  # both sides occur among 64 agents
    np.testing.assert_array_equal(obs[:, CUE_UP, 0, 0], cues == UP)
    np.testing.assert_array_equal(obs[:, CUE_DOWN, 0, 0], cues == DOWN)
    assert obs[:, JUNCTION].sum() == 0
    for t in range(1, 6):
        obs, rew, term, trunc, _ = env.step(np.full(64, RIGHT))
        assert obs[:, [CUE_UP, CUE_DOWN]].sum() == 0, "the cue must be hidden after step 0"
        assert (obs[:, JUNCTION, 0, 0] == (t == 5)).all()
        assert rew.sum() == 0 and not term.any() and not trunc.any()
    np.testing.assert_array_equal(env.positions, 5)


def test_reward_only_at_the_junction_for_the_cued_side():
    env = make_env(tmaze_config(3, num_agents=4), seed=1)
    env.reset()
    # up/down in the corridor: no reward, no move, no end
    _, rew, term, *_ = env.step(np.array([UP, DOWN, UP, DOWN]))
    assert rew.sum() == 0 and not term.any() and (env.positions == 0).all()
    _, rew, *_ = env.step(np.full(4, LEFT))  # left at the start stays at 0
    assert rew.sum() == 0 and (env.positions == 0).all()
    # step limit L + 1 = 4 is now out of reach: the episode truncates without reward
    for _ in range(2):
        _, rew, term, trunc, infos = env.step(np.full(4, RIGHT))
    assert rew.sum() == 0 and trunc.all() and infos[0]["metrics"]["success"] == 0.0

    env.reset(seed=2)
    for _ in range(3):
        env.step(np.full(4, RIGHT))
    _, rew, *_ = env.step(np.full(4, RIGHT))  # right at the junction: stays, nothing happens
    assert rew.sum() == 0 and (env.positions == 3).all()


def test_turn_ends_the_episode_with_the_right_reward():
    env = make_env(tmaze_config(2, num_agents=4, max_episode_steps=10), seed=3)
    env.reset()
    cues = env.cues
    for _ in range(2):
        env.step(np.full(4, RIGHT))
    other = np.where(cues == UP, DOWN, UP)
    turn = np.array([cues[0], other[1], cues[2], STAY])
    _, rew, term, trunc, infos = env.step(turn)
    np.testing.assert_array_equal(rew, [1.0, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(term, [True, True, True, False])
    assert not trunc.any() and "metrics" not in infos[0]
    np.testing.assert_array_equal(env.active, [False, False, False, True])
    _, rew, term, _, infos = env.step(np.array([cues[3]] * 4))  # finished agents' actions are ignored
    np.testing.assert_array_equal(rew, [0.0, 0.0, 0.0, 1.0])
    m = infos[0]["metrics"]
    assert m["success"] == m["ISR"] == 0.75 and m["CSR"] == 0.0 and m["episode_length"] == 4.0
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(np.zeros(4, dtype=np.int64))


def test_lengths_drawn_per_episode_and_default_limit():
    env = make_env(EnvConfig(name="tmaze", options={"corridor_lengths": [2, 7]}), seed=0)
    seen = set()
    for _ in range(20):
        env.reset()
        seen.add(env.corridor_length)
        assert env.max_episode_steps == env.corridor_length + 1
    assert seen == {2, 7}


@pytest.mark.parametrize(
    "options, match",
    [
        ({"corridor_lengths": [0]}, r"T-Maze corridor length 0 is invalid; allowed: integers in 1\.\."),
        ({"corridor_lengths": []}, r"corridor_lengths is empty"),
        ({"corridor_lengths": ["x"]}, r"env.options.corridor_lengths"),
        ({"length": 5}, r"env.options.length is not an option of env 'tmaze'; allowed: corridor_lengths"),
    ],
)
def test_bad_options_are_one_line_errors(options, match):
    with pytest.raises(ValueError, match=match) as e:
        EnvConfig(name="tmaze", options=options)
    assert "\n" not in str(e.value)


def test_grid_keys_are_refused():
    with pytest.raises(
        ValueError, match=r"env.obs_radius=3 is a POGEMA grid key; env 'tmaze' does not read it"
    ):
        EnvConfig(name="tmaze", obs_radius=3)
