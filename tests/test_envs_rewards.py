"""The reward functions (the paper's five and Follower's) on scripted trajectories with hand-computed answers."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from envs import make_env
from envs.config import EnvConfig
from envs.rewards import REWARDS, DistanceCache, bfs_distances, compute_rewards

WAIT, UP, DOWN, LEFT, RIGHT = range(5)

# Agent a walks the top row to A, agent b sits in the bottom row far from B.
LANES = """
a...A
#####
B...b
"""
# Agent a: right (closer), wait, left (farther), up (blocked by the border), then 4x right onto A at
# step 8; it has finished after that (finish mode) and its later actions do not matter.
SCRIPT_A = [RIGHT, WAIT, LEFT, UP, RIGHT, RIGHT, RIGHT, RIGHT, LEFT, LEFT]
SCRIPT_B = [WAIT] * 10

EXPECTED_FINISH = {  # agent a, steps 1..10 (episode truncated at 10)
    "sparse": [0, 0, 0, 0, 0, 0, 0, 1, 0, 0],
    "dense": [-0.01] * 7 + [1, 0, 0],
    "moving_negative": [-0.01, -0.005, -0.01, -0.01, -0.01, -0.01, -0.01, 1, 0, 0],
    "directional": [0.005, 0, 0, 0, 0.005, 0.005, 0.005, 1, 0, 0],
    "directional_negative": [-0.005, -0.01, -0.01, -0.01, -0.005, -0.005, -0.005, 1, 0, 0],
    # the planned path is the lane itself: each step onto its next cell pays 0.01, the goal too
    "follower": [0.01, 0, 0, 0, 0.01, 0.01, 0.01, 0.01, 0, 0],
}
EXPECTED_WAITING = {
    "sparse": 0,
    "dense": -0.01,
    "moving_negative": -0.005,
    "directional": 0,
    "directional_negative": -0.01,
    "follower": 0,
}


def _play(cfg: EnvConfig, scripts: list[list[int]]):
    env = make_env(cfg, seed=0)
    env.reset()
    out = []
    for actions in zip(*scripts):
        _, rew, term, trunc, _ = env.step(np.array(actions))
        assert rew.dtype == np.float32 and rew.shape == (len(scripts),)
        out.append(rew)
        if term.all() or trunc.all():
            break
    return np.array(out)


@pytest.mark.parametrize("reward", REWARDS)
def test_finish_mode(reward):
    cfg = EnvConfig(
        name="pogema", num_agents=2, map=LANES, on_target="finish", max_episode_steps=10, reward=reward
    )
    rew = _play(cfg, [SCRIPT_A, SCRIPT_B])
    np.testing.assert_allclose(rew[:, 0], EXPECTED_FINISH[reward], atol=1e-7)
    np.testing.assert_allclose(rew[:, 1], [EXPECTED_WAITING[reward]] * 10, atol=1e-7)


@pytest.mark.parametrize("reward", REWARDS)
def test_nothing_mode_no_reward_for_standing_or_coming_back(reward):
    # After arriving at step 8 agent a waits on its goal (step 9: no shaping), leaves it (step 10:
    # shaping for a move away) and comes back (step 11: no second +1, so oscillating pays nothing).
    script = SCRIPT_A[:8] + [WAIT, LEFT, RIGHT]
    cfg = EnvConfig(
        name="pogema", num_agents=2, map=LANES, on_target="nothing", max_episode_steps=11, reward=reward
    )
    rew = _play(cfg, [script, [WAIT] * 11])
    away = {
        "sparse": 0,
        "dense": -0.01,
        "moving_negative": -0.01,
        "directional": 0,
        "directional_negative": -0.01,
        "follower": 0,
    }
    np.testing.assert_allclose(rew[:, 0], EXPECTED_FINISH[reward][:8] + [0, away[reward], 0], atol=1e-7)


@pytest.mark.parametrize("reward", REWARDS)
def test_restart_mode_new_goal_counts_from_the_next_step(reward):
    # goals (0,2) then (0,0): right, right -> +1 and the goal becomes (0,0); left is then closer.
    cfg = EnvConfig(
        name="pogema",
        num_agents=1,
        map=".....",
        agents_xy=[[0, 0]],
        targets_xy=[[[0, 2], [0, 0]]],
        on_target="restart",
        max_episode_steps=4,
        reward=reward,
    )
    rew = _play(cfg, [[RIGHT, RIGHT, LEFT, RIGHT]])[:, 0]
    expected = {
        "sparse": [0, 1, 0, 0],
        "dense": [-0.01, 1, -0.01, -0.01],
        "moving_negative": [-0.01, 1, -0.01, -0.01],
        "directional": [0.005, 1, 0.005, 0],
        "directional_negative": [-0.005, 1, -0.005, -0.01],
        "follower": [0.01, 0.01, 0.01, 0],
    }[reward]
    np.testing.assert_allclose(rew, expected, atol=1e-7)


def test_compute_rewards_masks():
    reached = np.array([True, False, False, False])
    on_goal = np.array([True, True, False, False])
    acting = np.array([True, True, True, False])
    move = np.array([True, False, True, True])
    closer = np.array([False, False, True, True])
    r = compute_rewards("directional_negative", reached, on_goal, acting, move, closer)
    np.testing.assert_allclose(r, [1.0, 0.0, -0.005, 0.0])
    with pytest.raises(ValueError, match=r"unknown reward 'shaped'; allowed: sparse, dense"):
        compute_rewards("shaped", reached, on_goal, acting, move)


def _bfs_reference(free: np.ndarray, goal: tuple[int, int]) -> np.ndarray:
    dist = np.full(free.shape, -1)
    dist[goal] = 0
    q = deque([goal])
    while q:
        x, y = q.popleft()
        for nx, ny in ((x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)):
            if 0 <= nx < free.shape[0] and 0 <= ny < free.shape[1] and free[nx, ny] and dist[nx, ny] < 0:
                dist[nx, ny] = dist[x, y] + 1
                q.append((nx, ny))
    return dist


@pytest.mark.parametrize("seed", range(6))
def test_bfs_matches_queue_reference(seed):
    rng = np.random.default_rng(seed)
    free = rng.random((13, 17)) > 0.3
    goal = tuple(np.argwhere(free)[rng.integers(free.sum())])
    np.testing.assert_array_equal(bfs_distances(free, goal), _bfs_reference(free, goal))
    with pytest.raises(ValueError, match="is an obstacle"):
        bfs_distances(free, tuple(np.argwhere(~free)[0]))


def test_distance_cache_reuses_maps_and_goals():
    free = np.ones((5, 5), dtype=bool)
    cache = DistanceCache(max_maps=2)
    d1 = cache.for_map(free)((2, 2))
    assert cache.for_map(free.copy())((2, 2)) is d1  # same map content, same goal: cached
    cache.for_map(~np.eye(5, dtype=bool))
    cache.for_map(np.zeros((3, 3), dtype=bool) | True)
    assert cache.for_map(free)((2, 2)) is not d1  # evicted (least recently used)
