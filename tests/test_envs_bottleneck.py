"""The Bottleneck task: geometry for several L, task sampling, train/test splits and step limits."""

from __future__ import annotations

import numpy as np
import pytest

from envs import bottleneck_config, make_env, test_corridor_lengths, train_corridor_lengths
from envs.bottleneck import bottleneck_map, room_cells, sample_task, step_limit, with_length
from envs.config import EnvConfig
from envs.rewards import bfs_distances

LENGTHS = [1, 3, 7, 27, 100]


@pytest.mark.parametrize("L", LENGTHS)
def test_geometry(L):
    grid = bottleneck_map(L)
    assert grid.shape == (L + 4, 9)
    assert not grid[:2].any() and not grid[-2:].any()  # two free rows per room
    corridor = grid[2 : 2 + L]
    assert not corridor[:, 4].any() and corridor[:, [0, 1, 2, 3, 5, 6, 7, 8]].all()
    # The only way between the rooms is the corridor: top-left to bottom-left is 8 + (L + 1) + ... moves.
    dist = bfs_distances(~grid, (0, 0))
    assert dist[L + 3, 0] == (4 - 0) + (L + 3) + 4  # across to column 4, down, back to column 0
    top, bottom = room_cells(L)
    assert len(top) == len(bottom) == 18 and (top[:, 0] < 2).all() and (bottom[:, 0] >= L + 2).all()


@pytest.mark.parametrize("L", [3, 12, 50])
def test_env_map_tasks_and_limits(L):
    env = make_env(bottleneck_config(L, split="test"), seed=1)
    starts, goals = set(), set()
    for _ in range(30):
        env.reset()
        assert env.episode.labels["corridor_length"] == L and env.max_episode_steps == 2 * L + 100
        np.testing.assert_array_equal(env.obstacles, bottleneck_map(L))
        pos, tgt = env.agents_xy(), env.targets_xy()
        assert pos[0, 0] < 2 and tgt[0, 0] >= L + 2  # agent 0: top room -> bottom room
        assert pos[1, 0] >= L + 2 and tgt[1, 0] < 2  # agent 1: the mirror
        starts.add(tuple(pos[0]))
        goals.add(tuple(tgt[1]))
    assert len(starts) > 5 and len(goals) > 5  # drawn anew each reset


def test_train_split_samples_every_train_length():
    env = make_env(EnvConfig(name="bottleneck"), seed=0)
    seen = set()
    for _ in range(300):
        env.reset()
        seen.add(env.episode.labels["corridor_length"])
        assert env.max_episode_steps == 512
    assert seen == set(train_corridor_lengths())


def test_split_sets_and_limits():
    assert train_corridor_lengths() == [3, 4, 5, 6, 7, 8, 12, 16, 17, 18, 20, 21, 22, 23, 24, 27]
    test = test_corridor_lengths()
    assert test[:48] == list(range(3, 51)) and test[48:] == list(range(100, 1001, 100)) and len(test) == 58
    assert step_limit(7, "train") == 512 and step_limit(7, "test") == 114 and step_limit(1000, "test") == 2100
    with pytest.raises(ValueError, match=r"unknown split 'val'"):
        step_limit(7, "val")


def test_with_length_keeps_training_settings():
    train = EnvConfig(name="bottleneck", obs_radius=2, reward="dense", max_episode_steps=512)
    test = with_length(train, 40)
    assert (test.obs_radius, test.reward, test.opts.corridor_lengths, test.opts.split) == (
        2,
        "dense",
        [40],
        "test",
    )
    env = make_env(test, seed=0)
    env.reset()
    assert env.max_episode_steps == 180 and env.observation_space.shape == (3, 5, 5)


def test_many_agents_alternate_rooms_without_overlap():
    rng = np.random.default_rng(0)
    starts, goals = map(np.array, sample_task(5, 36, rng))
    assert len({tuple(s) for s in starts}) == 36 and len({tuple(g) for g in goals}) == 36
    assert (starts[0::2, 0] < 2).all() and (goals[0::2, 0] >= 7).all()
    assert (starts[1::2, 0] >= 7).all() and (goals[1::2, 0] < 2).all()
    with pytest.raises(ValueError, match=r"num_agents=37 is more than the Bottleneck rooms hold"):
        make_env(EnvConfig(name="bottleneck", num_agents=37))


@pytest.mark.parametrize("bad", [0, -3, 4093, 100_000_000])
def test_corridor_length_out_of_range(bad):
    with pytest.raises(
        ValueError, match=rf"corridor length {bad} is invalid; corridor lengths must be integers in 1\.\.4092"
    ):
        EnvConfig(name="bottleneck", options={"corridor_lengths": [5, bad]})
    with pytest.raises(ValueError, match=rf"corridor length {bad} is invalid"):
        bottleneck_map(bad)


def test_map_source_fields_rejected():
    with pytest.raises(ValueError, match="builds its own map"):
        make_env(EnvConfig(name="bottleneck", map="...."))
    with pytest.raises(ValueError, match=r"on_target='restart' is not supported by 'bottleneck'"):
        make_env(EnvConfig(name="bottleneck", on_target="restart"))


def _walk(env, agent: int, goal, free) -> tuple[int, list[dict]]:
    """Greedy shortest-path steps of one agent (the other waits) until it stands on ``goal``."""
    steps, infos = 0, []
    while tuple(env.agents_xy()[agent]) != tuple(goal):
        dist = bfs_distances(free, tuple(goal))
        pos = env.agents_xy()[agent]
        actions = np.zeros(env.num_agents, dtype=np.int64)
        for a, (dx, dy) in enumerate([(-1, 0), (1, 0), (0, -1), (0, 1)], start=1):
            x, y = pos + (dx, dy)
            if 0 <= x < free.shape[0] and 0 <= y < free.shape[1] and dist[x, y] == dist[tuple(pos)] - 1:
                actions[agent] = a
                break
        *_, infos = env.step(actions)
        steps += 1
    return steps, infos


@pytest.mark.parametrize("L", [3, 10])
@pytest.mark.parametrize("seed", range(4))
def test_scripted_solution_and_its_metrics(L, seed):
    """Agent 1 parks in a bottom corner, agent 0 walks to its goal, then agent 1 walks to its goal:
    always solvable, and SoC / makespan follow from the three walking distances."""
    env = make_env(bottleneck_config(L, obs_radius=2), seed=seed)
    env.reset()
    free = ~env.obstacles
    start0, start1 = env.agents_xy()
    goal0, goal1 = env.targets_xy()
    park = next(c for c in [(L + 3, 0), (L + 3, 8)] if c != tuple(goal0))
    d1, _ = _walk(env, 1, park, free)
    d0, _ = _walk(env, 0, goal0, free)
    assert not env.active[0]
    d2, infos = _walk(env, 1, goal1, free)
    dist = lambda a, b: bfs_distances(free, tuple(b))[tuple(a)]  # noqa: E731
    assert (d1, d0, d2) == (dist(start1, park), dist(start0, goal0), dist(park, goal1))
    m = infos[0]["metrics"]
    assert m == {
        "CSR": 1.0,
        "ISR": 1.0,
        "SoC": float(2 * (d1 + d0) + d2),
        "makespan": float(d1 + d0 + d2),
        "episode_length": float(d1 + d0 + d2),
    }
