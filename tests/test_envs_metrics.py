"""Episode metrics on hand-built episodes with known answers (standalone functions and in the env)."""

from __future__ import annotations

import numpy as np
import pytest

from envs import make_env
from envs import metrics as M
from envs.config import EnvConfig

WAIT, UP, DOWN, LEFT, RIGHT = range(5)
LANES = """
a...A
#####
B...b
"""


def test_functions_on_known_arrivals():
    arrival = np.array([3, -1, 5])
    assert M.csr(arrival) == 0.0 and M.isr(arrival) == pytest.approx(2 / 3)
    assert M.sum_of_costs(arrival, 10) == 3 + 10 + 5
    assert M.makespan(arrival, 10) == 10
    done = np.array([3, 7])
    assert M.csr(done) == 1.0 and M.isr(done) == 1.0
    assert M.sum_of_costs(done, 7) == 10 and M.makespan(done, 7) == 7
    assert M.throughput(12, 256) == 12 / 256
    np.testing.assert_array_equal(
        M.arrival_steps_nothing(np.array([4, 2, -1]), np.array([True, False, False])), [4, -1, -1]
    )


def test_episode_metrics_keys_and_errors():
    m = M.episode_metrics("finish", 10, np.array([3, -1]))
    assert m == {"CSR": 0.0, "ISR": 0.5, "SoC": 13.0, "makespan": 10.0, "episode_length": 10.0}
    assert M.episode_metrics("restart", 8, goals_reached=4) == {"throughput": 0.5, "episode_length": 8.0}
    with pytest.raises(ValueError, match=r"arrival step 11 is after the episode end 10"):
        M.sum_of_costs(np.array([11]), 10)
    with pytest.raises(ValueError, match=r"unknown on_target 'lifelong'"):
        M.episode_metrics("lifelong", 10, np.array([1]))
    with pytest.raises(ValueError, match="non-empty 1-D"):
        M.csr(np.array([]))
    with pytest.raises(ValueError, match=r"episode_length=0 must be > 0"):
        M.throughput(1, 0)


def _run(cfg, scripts):
    env = make_env(cfg, seed=0)
    env.reset()
    for t, actions in enumerate(zip(*scripts), start=1):
        *_, term, trunc, infos = env.step(np.array(actions))
        if term.all() or trunc.all():
            return t, infos[0]["metrics"]
    raise AssertionError("episode did not end")


def test_finish_soc_counts_arrival_steps_not_agents_times_length():
    # a arrives at step 4, b never: SoC = 4 + 10 (the reference would report 2 x 10 = 20).
    cfg = EnvConfig(name="pogema", num_agents=2, map=LANES, on_target="finish", max_episode_steps=10)
    t, m = _run(cfg, [[RIGHT] * 10, [WAIT] * 10])
    assert t == 10 and m == {"CSR": 0.0, "ISR": 0.5, "SoC": 14.0, "makespan": 10.0, "episode_length": 10.0}


def test_finish_episode_ends_when_all_finished():
    cfg = EnvConfig(name="pogema", num_agents=2, map=LANES, on_target="finish", max_episode_steps=50)
    t, m = _run(cfg, [[RIGHT] * 4 + [WAIT] * 20, [WAIT] * 2 + [LEFT] * 20])
    assert t == 6 and m == {"CSR": 1.0, "ISR": 1.0, "SoC": 10.0, "makespan": 6.0, "episode_length": 6.0}


def test_nothing_counts_the_last_arrival_and_ends_when_all_stand_on_goals():
    cfg = EnvConfig(name="pogema", num_agents=2, map=LANES, on_target="nothing", max_episode_steps=50)
    # a: arrives at 4, leaves at 5, back at 6; b arrives at 7 -> all on goal at step 7.
    t, m = _run(cfg, [[RIGHT] * 4 + [LEFT, RIGHT] + [WAIT] * 10, [WAIT] * 3 + [LEFT] * 10])
    assert t == 7 and m == {"CSR": 1.0, "ISR": 1.0, "SoC": 6.0 + 7.0, "makespan": 7.0, "episode_length": 7.0}


def test_nothing_timeout_counts_only_agents_on_goal_at_the_end():
    cfg = EnvConfig(name="pogema", num_agents=2, map=LANES, on_target="nothing", max_episode_steps=8)
    # a arrives at 4 and leaves at 8 (the last step): not on its goal at the end -> cost 8.
    t, m = _run(cfg, [[RIGHT] * 4 + [WAIT] * 3 + [LEFT], [WAIT] * 8])
    assert t == 8 and m == {"CSR": 0.0, "ISR": 0.0, "SoC": 16.0, "makespan": 8.0, "episode_length": 8.0}


def test_restart_throughput_counts_every_goal():
    # goal sequence (0,2),(0,0),(0,2)...: the agent shuttles and reaches a goal every 2 steps.
    cfg = EnvConfig(
        name="pogema",
        num_agents=1,
        map=".....",
        agents_xy=[[0, 0]],
        targets_xy=[[[0, 2], [0, 0], [0, 2], [0, 0], [0, 2], [0, 0]]],
        on_target="restart",
        max_episode_steps=9,
    )
    t, m = _run(cfg, [[RIGHT, RIGHT, LEFT, LEFT, RIGHT, RIGHT, LEFT, LEFT, WAIT]])
    assert t == 9 and m == {"throughput": pytest.approx(4 / 9), "episode_length": 9.0}


@pytest.mark.parametrize("on_target", ["finish", "nothing"])
def test_agent_starting_on_its_goal_arrives_at_step_one(on_target):
    cfg = EnvConfig(
        name="pogema",
        num_agents=2,
        map="...",
        agents_xy=[[0, 0], [0, 2]],
        targets_xy=[[0, 0], [0, 1]],
        on_target=on_target,
        max_episode_steps=5,
    )
    env = make_env(cfg, seed=0)
    env.reset()
    _, rew, *_ = env.step(np.array([WAIT, WAIT]))
    assert list(rew) == [1.0, 0.0]
    *_, term, trunc, infos = env.step(np.array([WAIT, LEFT]))
    assert term.all() and infos[0]["metrics"]["SoC"] == 1 + 2 and infos[0]["metrics"]["makespan"] == 2
