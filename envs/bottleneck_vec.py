"""The Bottleneck batched over environments: ``k`` corridors stepped in one numpy step.

:class:`BottleneckVector` is the :class:`envs.vector.VectorEnv` of ``k`` Bottleneck envs. It plays
exactly what ``k`` independent ``make_env(cfg, seed=s)`` :class:`envs.grid_env.GridEnv` instances play
(same episodes from the same seeds and random streams, same observations, rewards, termination and
metrics; ``tests/test_envs_vector.py`` checks it step by step against them), without pogema and
without a Python loop over environments in the step.

Layout: every env owns one slab of ``Hp x Wp`` cells in flat arrays (``Hp`` = rows of the longest
corridor's map with pogema's border of ``r`` cells (a ring of walls, free beyond), ``Wp = 9 + 2r``;
rows below a shorter map are walls that no window reaches). A cell is ``env * Hp*Wp + x * Wp + y`` in bordered
coordinates, so the cells of different envs are disjoint and the collision rules of
:class:`envs.collisions.CollisionResolver` run once over all ``k * A`` agents (agents of different envs
never share a cell, and agent order within an env is kept, so ``priority`` and ``soft`` resolve as
per env). Observations are two gathers (obstacle and agent channels through per-agent window indices)
plus one scatter for the goal marker.

Resets (when an env's episode ends) stay per env in Python but without pogema: they draw from the
env's own generator exactly what :func:`envs.bottleneck.build_bottleneck`'s episodes draw (episode
seed, corridor length, starts and goals) and write that env's slab.

Supported: ``on_target`` finish / nothing, every collision system, the rewards sparse, dense,
moving_negative, directional, directional_negative. Not supported (``make_vector_env`` falls back to
the per-env loop): the planner path channel and the ``follower`` reward.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium
import numpy as np

from envs import metrics as M
from envs.base import check_seed
from envs.bottleneck import ROOM_CELLS, ROOM_ROWS, WIDTH, bottleneck_map, checked_config, step_limit
from envs.collisions import CollisionResolver
from envs.config import EnvConfig
from envs.grid_env import _SEED_SPACE, MOVES
from envs.rewards import bfs_distances, check_reward, compute_rewards, needs_distances, needs_planner
from envs.vector import StepResult, check_vector_actions


def bordered_map(grid: np.ndarray, r: int) -> np.ndarray:
    """bool [H+2r, W+2r]: pogema's bordered obstacles (``empty_outside``): a ring of walls around the
    map, free cells beyond it (outside the ring nothing is reachable, but windows see it)."""
    H, W = grid.shape
    out = np.zeros((H + 2 * r, W + 2 * r), dtype=bool)
    out[r - 1, r - 1 : r + W + 1] = out[r + H, r - 1 : r + W + 1] = True
    out[r - 1 : r + H + 1, r - 1] = out[r - 1 : r + H + 1, r + W] = True
    out[r : r + H, r : r + W] = grid
    return out


class BottleneckVector:
    """``k = len(seeds)`` Bottleneck envs of ``cfg`` (module docstring); env ``i`` is seeded like
    ``make_env(cfg, seed=seeds[i])``."""

    binary_observations = True
    width = WIDTH
    """map width (the corridor tasks differ in their rooms, not in their rows)"""
    draw_size = 4 * ROOM_CELLS
    """integers drawn per reset by :meth:`_draw`"""

    def __init__(self, cfg: EnvConfig, seeds: Sequence[int | None], obs_dtype: object = np.float32) -> None:
        cfg, lengths = self._check_config(cfg)
        if cfg.planner_path or cfg.priority_channel or needs_planner(cfg.reward):
            raise ValueError(
                "BottleneckVector does not support the planner (env.planner_path, reward 'follower') "
                "nor env.priority_channel; "
                "use make_vector_env, which falls back to the per-env loop"
            )
        if not len(seeds):
            raise ValueError("a vector env needs at least one environment (got no seeds)")
        self.cfg = cfg
        self.num_envs = k = len(seeds)
        self.num_agents = A = int(cfg.num_agents)
        self.obs_dtype = np.dtype(obs_dtype)
        if self.obs_dtype not in (np.dtype(np.float32), np.dtype(np.uint8)):
            raise ValueError(f"obs_dtype {self.obs_dtype} is not supported; allowed: float32, uint8")
        self.on_target = cfg.on_target
        self.reward_name = check_reward(cfg.reward)
        self._lengths = list(lengths)
        self._split = cfg.opts.split
        r = self._r = cfg.radius
        d = self._d = 2 * r + 1
        self.observation_space = gymnasium.spaces.Box(0.0, 1.0, shape=(3, d, d), dtype=np.float32)
        self.action_space = gymnasium.spaces.Discrete(len(MOVES))

        N = self._N = k * A
        self._Wp = Wp = self.width + 2 * r
        self._Hp = Hp = 2 * ROOM_ROWS + max(self._lengths) + 2 * r
        self._HW = HW = Hp * Wp
        self._slabs: dict[int, np.ndarray] = {}  # L -> bool [HW], the bordered map padded with walls
        for length in set(self._lengths):
            slab = np.ones((Hp, Wp), dtype=bool)
            slab[: 2 * ROOM_ROWS + length + 2 * r] = bordered_map(self._map(length), r)
            self._slabs[length] = slab.ravel()
        self._slab_lengths = np.array(sorted(self._slabs), dtype=np.int64)
        self._slab_table = np.stack([self._slabs[int(L)] for L in self._slab_lengths])  # [n_lengths, HW]
        self._slab_limits = np.array(
            [step_limit(int(L), self._split) for L in self._slab_lengths], dtype=np.int64
        )
        self._obst = np.ones(k * HW, dtype=bool)
        # obstacle and agent channels side by side, in the observation dtype, for one gather
        self._chan = np.zeros(2 * k * HW, dtype=self.obs_dtype)
        self._obst_o = self._chan[: k * HW]
        self._occ = self._chan[k * HW :]
        self._obst_o[:] = 1
        self._resolver = CollisionResolver(cfg.collision_system, k * HW)
        self._move_flat = MOVES[:, 0] * Wp + MOVES[:, 1]
        self._env_of = np.repeat(np.arange(k), A)
        self._base = self._env_of * HW  # first cell of each agent's env slab
        window = (np.arange(d)[:, None] * Wp + np.arange(d)[None, :]).ravel() - (r * Wp + r)
        self._window = np.concatenate([window, window + k * HW])  # [2*d*d] offsets into _chan
        self._goal_rows = np.arange(N) * (3 * d * d) + 2 * d * d  # flat offset of each agent's goal channel

        self._pos = np.zeros((N, 2), dtype=np.int64)  # bordered (x, y); finished agents keep their cell
        self._cur = np.zeros(N, dtype=np.int64)  # global flat cell
        self._goal = np.zeros((N, 2), dtype=np.int64)
        self._goal_flat = np.zeros(N, dtype=np.int64)
        self._active = np.ones(N, dtype=bool)
        self._t = np.zeros(k, dtype=np.int64)
        self._limit = np.zeros(k, dtype=np.int64)
        self._arrival = np.full(N, -1, dtype=np.int64)
        self._last_arrival = np.full(N, -1, dtype=np.int64)
        self._prev_on_goal = np.zeros(N, dtype=bool)
        self._length = np.zeros(k, dtype=np.int64)  # corridor length of each env's episode (0: none yet)
        self._episode_seed = np.full(k, -1, dtype=np.int64)
        self._dist: np.ndarray | None = None
        self._dist_cache: dict[tuple[int, int], np.ndarray] = {}
        if needs_distances(cfg.reward):
            self._dist = np.full((N, HW), -1, dtype=np.int32)  # each agent's BFS distances in its slab
        self._rngs = [np.random.default_rng(None if s is None else check_seed(s)) for s in seeds]
        self._pending: list[int | None] = [None if s is None else check_seed(s) for s in seeds]
        self._started = False

    # ----------------------------------------------------------------- public state
    @property
    def active(self) -> np.ndarray:
        return self._active.reshape(self.num_envs, self.num_agents).copy()

    @property
    def corridor_lengths(self) -> np.ndarray:
        """int [k] corridor length of each env's current episode."""
        return self._length.copy()

    @property
    def episode_seeds(self) -> np.ndarray:
        """int [k] each env's current episode seed (``GridEnv.episode.seed`` of the same env)."""
        return self._episode_seed.copy()

    @property
    def elapsed_steps(self) -> np.ndarray:
        """int [k] steps of each env's current episode."""
        return self._t.copy()

    def agents_xy(self) -> np.ndarray:
        """int [k, A, 2] agent positions in map coordinates (finished agents keep their last cell)."""
        return (self._pos - self._r).reshape(self.num_envs, self.num_agents, 2)

    def targets_xy(self) -> np.ndarray:
        """int [k, A, 2] goals in map coordinates."""
        return (self._goal - self._r).reshape(self.num_envs, self.num_agents, 2)

    # ----------------------------------------------------------------- vector API
    def reset(self) -> np.ndarray:
        self._reset_envs(list(range(self.num_envs)))
        self._started = True
        return self._observe()

    def step(self, actions: np.ndarray) -> StepResult:
        if not self._started:
            raise RuntimeError("call reset() before step()")
        k, A, N = self.num_envs, self.num_agents, self._N
        a = check_vector_actions(actions, k, A, len(MOVES)).reshape(N)
        acting = self._active.copy()  # who takes part in this step (rewards need it)
        cur = self._cur
        tgt = cur + self._move_flat[a]
        all_acting = bool(acting.all())
        moved = self._resolver(cur, tgt, None if all_acting else acting, self._obst)
        if np.count_nonzero(moved):
            new = np.where(moved, tgt, cur)
            # all old cells first: in 'soft' one agent may enter a cell another leaves
            self._occ[cur[moved]] = 0
            self._occ[tgt[moved]] = 1
            self._pos[moved] += MOVES[a[moved]]
        else:
            new = cur
        self._cur = new
        self._t += 1
        t_agent = np.repeat(self._t, A)
        on_goal = new == self._goal_flat

        closer = None
        if self._dist is not None:
            rows = np.arange(N)
            d = self._dist
            closer = d[rows, cur - self._base] - d[rows, new - self._base] == 1

        if self.on_target == "finish":
            reached = on_goal & acting
            if np.count_nonzero(reached):
                self._active[reached] = False
                self._occ[new[reached]] = 0  # finished agents leave the grid
                self._arrival[reached] = t_agent[reached]
            terminated = ~self._active.reshape(k, A)
        else:  # nothing
            reached = on_goal & (self._arrival < 0)
            self._arrival[reached] = t_agent[reached]
            arrive = on_goal & ~self._prev_on_goal
            self._last_arrival[arrive] = t_agent[arrive]
            self._prev_on_goal = on_goal
            terminated = np.repeat(on_goal.reshape(k, A).all(axis=1, keepdims=True), A, axis=1)

        rewards = compute_rewards(self.reward_name, reached, on_goal, acting, a != 0, closer, None)
        out_of_time = self._t >= self._limit
        truncated = np.repeat(out_of_time[:, None], A, axis=1)
        ended = out_of_time | terminated.all(axis=1)
        terminated, ended = self._after_step(terminated, ended)
        metrics: list[dict | None] = [None] * k
        if np.count_nonzero(ended):
            done = np.flatnonzero(ended)
            for e, m in zip(done.tolist(), self._metrics(done)):
                metrics[e] = m
            self._reset_envs(done.tolist())
        return self._observe(), rewards.reshape(k, A), terminated, truncated, ended, metrics

    def close(self) -> None:
        """Nothing to release."""

    # ----------------------------------------------------------------- internals
    def _reset_envs(self, envs: list[int]) -> None:
        """The next episode of each env in ``envs``, drawn from the env's generator as GridEnv.reset()
        and build_bottleneck's ``new_episode`` draw it: the episode seed, the corridor length, then
        :func:`envs.bottleneck.sample_task`'s four permutations (same calls, same order). Only the
        draws are per env; the writes into the state arrays are one vector operation each."""
        A, r, Wp, HW, k = self.num_agents, self._r, self._Wp, self._HW, self.num_envs
        lengths, n_len = self._lengths, len(self._lengths)
        picks = np.empty((len(envs), self.draw_size), dtype=np.int64)
        length_of = np.empty(len(envs), dtype=np.int64)
        for j, e in enumerate(envs):
            rng, seed = self._rngs[e], self._pending[e]
            self._pending[e] = None
            if seed is not None:
                rng = self._rngs[e] = np.random.default_rng(seed)
            else:  # GridEnv's episode seed (pogema's; it changes nothing with fixed starts and goals)
                seed = int(rng.integers(_SEED_SPACE))
            self._episode_seed[e] = seed
            length_of[j] = lengths[int(rng.integers(n_len))] if n_len > 1 else lengths[0]
            picks[j] = self._draw(rng)
        E = np.asarray(envs, dtype=np.int64)
        x, y, gx, gy = self._place(E, picks, length_of)
        pos = np.stack([x, y], axis=-1).reshape(-1, 2) + r
        goal = np.stack([gx, gy], axis=-1).reshape(-1, 2) + r

        slab_ids = np.searchsorted(self._slab_lengths, length_of)
        changed = self._length[E] != length_of
        if np.count_nonzero(changed):
            self._obst.reshape(k, HW)[E[changed]] = self._slab_table[slab_ids[changed]]
            self._obst_o.reshape(k, HW)[E[changed]] = self._slab_table[slab_ids[changed]]
        self._length[E] = length_of
        self._occ.reshape(k, HW)[E] = 0
        ag = (E[:, None] * A + np.arange(A)).reshape(-1)
        base = self._base[ag]
        self._pos[ag] = pos
        self._goal[ag] = goal
        self._cur[ag] = base + pos[:, 0] * Wp + pos[:, 1]
        self._goal_flat[ag] = base + goal[:, 0] * Wp + goal[:, 1]
        self._occ[self._cur[ag]] = 1
        self._active[ag] = True
        self._t[E] = 0
        self._limit[E] = self.cfg.max_episode_steps or self._slab_limits[slab_ids]
        self._arrival[ag] = -1
        self._last_arrival[ag] = -1
        self._prev_on_goal[ag] = False
        if self._dist is not None:
            for i, length, (g0, g1) in zip(ag.tolist(), np.repeat(length_of, A).tolist(), goal.tolist()):
                self._dist[i] = self._distances(length, g0, g1)

    # ----------------------------------------------------------------- the task (hooks of the Cue tasks)
    def _check_config(self, cfg: EnvConfig) -> tuple[EnvConfig, list[int]]:
        return checked_config(cfg)

    def _map(self, length: int) -> np.ndarray:
        return bottleneck_map(length)

    def _draw(self, rng: np.random.Generator) -> np.ndarray:
        """:func:`envs.bottleneck.sample_task`'s draws: four permutations of the room cells (starts
        down, starts up, goals down, goals up), same calls in the same order."""
        return np.concatenate([rng.permutation(ROOM_CELLS) for _ in range(4)])

    def _place(
        self, envs: np.ndarray, picks: np.ndarray, length_of: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Starts and goals (x, y, gx, gy, each int [n, A], map coordinates) from the draws, as
        sample_task places them: even agents top -> bottom, odd agents bottom -> top."""
        A = self.num_agents
        down, up = A - A // 2, A // 2
        # room cell i is (i // 9, i % 9) of the top room, or of the bottom room (rows L+2, L+3)
        bottom = (ROOM_ROWS + length_of)[:, None]  # first row of the bottom room
        p = picks.reshape(len(envs), 4, ROOM_CELLS)
        room_x, room_y = p // WIDTH, p % WIDTH
        x = np.empty((len(envs), A), dtype=np.int64)
        y, gx, gy = np.empty_like(x), np.empty_like(x), np.empty_like(x)
        x[:, 0::2], y[:, 0::2] = room_x[:, 0, :down], room_y[:, 0, :down]
        x[:, 1::2], y[:, 1::2] = bottom + room_x[:, 1, :up], room_y[:, 1, :up]
        gx[:, 0::2], gy[:, 0::2] = bottom + room_x[:, 2, :down], room_y[:, 2, :down]
        gx[:, 1::2], gy[:, 1::2] = room_x[:, 3, :up], room_y[:, 3, :up]
        return x, y, gx, gy

    def _after_step(self, terminated: np.ndarray, ended: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Task rules after the moves, before ended envs reset (none for the Bottleneck)."""
        return terminated, ended

    def _goal_cells(self) -> tuple[np.ndarray, np.ndarray]:
        """Row and column [k*A] of each agent's goal marker in its window: the goal's cell, or its
        projection onto the window border when out of view."""
        r = self._r
        diff = self._pos - self._goal
        np.clip(diff, -r, r, out=diff)
        return r - diff[:, 0], r - diff[:, 1]

    # ----------------------------------------------------------------- internals
    def _distances(self, length: int, gx: int, gy: int) -> np.ndarray:
        """int32 [HW]: BFS distances to bordered cell (gx, gy) over the corridor's bordered map (the
        values GridEnv's DistanceCache gives), padded with -1 to the slab."""
        key = (length, gx * self._Wp + gy)
        d = self._dist_cache.get(key)
        if d is None:
            rows = 2 * ROOM_ROWS + length + 2 * self._r
            free = ~self._slabs[length].reshape(self._Hp, self._Wp)[:rows]
            d = np.full(self._HW, -1, dtype=np.int32)
            d[: rows * self._Wp] = bfs_distances(free, (gx, gy)).ravel()
            self._dist_cache[key] = d
        return d

    def _observe(self) -> np.ndarray:
        """obs [k*A, 3, d, d]: obstacles, agents, own goal (pogema's default observation)."""
        N, d = self._N, self._d
        obs = np.zeros((N, 3 * d * d), dtype=self.obs_dtype)
        obs[:, : 2 * d * d] = self._chan[self._cur[:, None] + self._window]
        row, col = self._goal_cells()
        obs.reshape(-1)[self._goal_rows + row * d + col] = 1
        return obs.reshape(N, 3, d, d)

    def _metrics(self, envs: np.ndarray) -> list[dict[str, float]]:
        """:func:`envs.metrics.episode_metrics` of each env in ``envs`` (finish / nothing), for all of
        them in one pass: CSR, ISR, SoC, makespan, episode_length."""
        A = self.num_agents
        ag = envs[:, None] * A + np.arange(A)
        if self.on_target == "nothing":
            arrival = M.arrival_steps_nothing(self._last_arrival[ag], self._prev_on_goal[ag])
        else:
            arrival = self._arrival[ag]
        t = self._t[envs]
        arrived = arrival >= 0
        costs = np.where(arrived, arrival, t[:, None])
        columns = {
            "CSR": arrived.all(axis=1).astype(np.float64),
            "ISR": arrived.sum(axis=1) / A,
            "SoC": costs.sum(axis=1).astype(np.float64),
            "makespan": costs.max(axis=1).astype(np.float64),
            "episode_length": t.astype(np.float64),
        }
        lists = {key: v.tolist() for key, v in columns.items()}
        return [{key: lists[key][j] for key in lists} for j in range(len(envs))]


def build_bottleneck_vector(
    cfg: EnvConfig, seeds: Sequence[int | None], obs_dtype: object = np.float32
) -> BottleneckVector | None:
    """The registered vector builder of ``bottleneck``: None (fall back to the loop) for the planner."""
    if cfg.planner_path or cfg.priority_channel or needs_planner(cfg.reward):
        return None
    return BottleneckVector(cfg, seeds, obs_dtype)
