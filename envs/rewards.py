"""The SRMT paper's five reward functions, vectorised over agents, and cached BFS distance maps.

All give +1 on the step an agent reaches its goal and 0 to an agent that stands on its goal without
reaching it anew (classic ``nothing`` mode) or that no longer acts (``finish`` mode). Otherwise, per
step:

============================  =========================================================
``sparse``                    0
``dense``                     -0.01
``moving_negative``           -0.005 if the action was "wait", -0.01 if it was a move
``directional``               +0.005 if the agent stepped onto the next cell of a shortest
                              path to its goal (its BFS distance dropped by one), else 0
``directional_negative``      -0.005 on such a step, -0.01 otherwise
``follower``                  +0.01 if the agent now stands on the next cell of the path
                              its planner gave it on the step before (its sub-goal), else 0;
                              **no +1 for the goal** (the sub-goal bonus replaces it)
============================  =========================================================

``follower`` is Follower's reward (Skrynnik et al., AAAI 2024, ``intrinsic_target_reward``): the planner
is :mod:`envs.guidance` with ``EnvConfig.planner_costs``, the same one that draws the path channel.
Reaching the goal also reaches the sub-goal, so it earns 0.01, like any other step along the path.

"Moving" means choosing a move action (the agent's decision), whether or not a collision blocked it,
as in the reference. Shortest paths are over static obstacles; any cell one step closer counts (the
reference followed one planner path and rewarded only that path's next cell, which on ties is arbitrary).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

REWARDS = ("sparse", "dense", "moving_negative", "directional", "directional_negative", "follower")
GOAL_REWARD = 1.0
STEP_PENALTY = -0.01
WAIT_PENALTY = -0.005
DIRECTIONAL_BONUS = 0.005
DIRECTIONAL_STEP = -0.005
FOLLOWER_BONUS = 0.01


def check_reward(name: str) -> str:
    if name not in REWARDS:
        raise ValueError(f"unknown reward {name!r}; allowed: {', '.join(REWARDS)}")
    return name


def needs_distances(name: str) -> bool:
    return check_reward(name).startswith("directional")


def needs_planner(name: str) -> bool:
    return check_reward(name) == "follower"


def compute_rewards(
    name: str,
    reached: np.ndarray,
    on_goal: np.ndarray,
    acting: np.ndarray,
    wants_move: np.ndarray,
    closer: np.ndarray | None = None,
    on_subgoal: np.ndarray | None = None,
) -> np.ndarray:
    """Rewards [A] float32 for one step.

    reached:    bool [A], reached its goal this step (gets +1)
    on_goal:    bool [A], stands on its goal after the step (no shaping)
    acting:     bool [A], took part in the step (False: finished in ``finish`` mode, gets 0)
    wants_move: bool [A], chose a move action (not "wait")
    closer:     bool [A], stepped one BFS step closer to its goal (directional rewards only)
    on_subgoal: bool [A], stands on the sub-goal its planner gave it the step before (``follower`` only)
    """
    if name == "sparse":
        return (reached & acting).astype(np.float32)
    if name == "follower":
        if on_subgoal is None:
            raise ValueError("reward 'follower' needs the per-agent 'on_subgoal' flags")
        earned = on_subgoal & acting & ~(on_goal & ~reached)  # standing on a goal earns nothing
        return np.where(earned, FOLLOWER_BONUS, 0.0).astype(np.float32)
    if name == "dense":
        shaping = np.full(len(reached), STEP_PENALTY, dtype=np.float32)
    elif name == "moving_negative":
        shaping = np.where(wants_move, STEP_PENALTY, WAIT_PENALTY).astype(np.float32)
    elif name in ("directional", "directional_negative"):
        if closer is None:
            raise ValueError(f"reward {name!r} needs the per-agent 'closer' flags")
        hit, miss = (DIRECTIONAL_BONUS, 0.0) if name == "directional" else (DIRECTIONAL_STEP, STEP_PENALTY)
        shaping = np.where(closer, hit, miss).astype(np.float32)
    else:
        check_reward(name)
        raise AssertionError("unreachable")
    shaping[on_goal] = 0.0
    shaping[reached] = GOAL_REWARD
    shaping[~acting] = 0.0
    return shaping


def bfs_distances(free: np.ndarray, goal: tuple[int, int]) -> np.ndarray:
    """Shortest-path lengths [H, W] int32 from every cell to ``goal`` over 4-connected free cells (-1 =
    unreachable or obstacle). Frontier-at-a-time BFS in numpy: one vector step per distance ring."""
    H, W = free.shape
    flat_free = np.zeros((H + 2) * (W + 2), dtype=bool)  # a blocked frame keeps neighbours in range
    flat_free.reshape(H + 2, W + 2)[1:-1, 1:-1] = free
    stride = W + 2
    dist = np.full(flat_free.size, -1, dtype=np.int32)
    g = (goal[0] + 1) * stride + goal[1] + 1
    if not flat_free[g]:
        raise ValueError(f"goal {goal} is an obstacle or outside the {H}x{W} map")
    dist[g] = 0
    frontier = np.array([g])
    offsets = np.array([-stride, stride, -1, 1])
    d = 0
    while frontier.size:
        d += 1
        nb = (frontier[:, None] + offsets).ravel()
        nb = np.unique(nb[flat_free[nb] & (dist[nb] < 0)])
        dist[nb] = d
        frontier = nb
    return dist.reshape(H + 2, W + 2)[1:-1, 1:-1].copy()


class DistanceCache:
    """BFS distance maps per (map, goal), least recently used maps dropped first.

    Bottleneck has at most 36 goal cells per corridor length, so after warm-up a reset costs nothing;
    generated maps change every episode, so their entries age out.
    """

    def __init__(self, max_maps: int = 64, max_goals_per_map: int = 4096):
        self._maps: OrderedDict[bytes, dict[int, np.ndarray]] = OrderedDict()
        self._max_maps = max_maps
        self._max_goals = max_goals_per_map

    def for_map(self, free: np.ndarray) -> _MapDistances:
        key = np.packbits(free).tobytes() + np.asarray(free.shape, dtype=np.int64).tobytes()
        goals = self._maps.pop(key, None)
        if goals is None:
            goals = {}
        self._maps[key] = goals
        while len(self._maps) > self._max_maps:
            self._maps.popitem(last=False)
        return _MapDistances(free, goals, self._max_goals)


class _MapDistances:
    def __init__(self, free: np.ndarray, goals: dict[int, np.ndarray], max_goals: int):
        self._free, self._goals, self._max = free, goals, max_goals

    def __call__(self, goal: tuple[int, int]) -> np.ndarray:
        """Flat distance map [H*W] to ``goal``."""
        key = int(goal[0]) * self._free.shape[1] + int(goal[1])
        d = self._goals.get(key)
        if d is None:
            if len(self._goals) >= self._max:
                self._goals.clear()
            d = self._goals[key] = bfs_distances(self._free, goal).ravel()
        return d
