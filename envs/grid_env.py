"""GridEnv: a POGEMA grid stepped with numpy over all agents.

pogema builds every episode (map, starts, goals, lifelong goal sequences: same seeds, same instances
as pogema and pogema-toolbox) and stays the source of truth that planners read through ``env.pogema``.
The step itself (moves, collisions, observations, rewards, metrics) is computed here with array
operations instead of pogema's per-agent Python loops, and the result is written back into pogema's
grid, so ``env.pogema.get_agents_xy()`` and friends always describe the current state.
``tests/test_envs_pogema_parity.py`` checks positions, goals, observations and termination against
pogema's own step for all modes and collision systems.

Coordinates: ``(x, y) = (row, column)``, x grows downwards. Actions (pogema's MOVES): 0 wait,
1 up (x-1), 2 down (x+1), 3 left (y-1), 4 right (y+1). pogema's ``get_agents_xy()`` /
``get_targets_xy()`` / ``get_obstacles()`` use the bordered grid (map shifted by ``obs_radius`` on
both axes) unless called with ``ignore_borders=True``; ``GridEnv.agents_xy()`` / ``targets_xy()`` /
``obstacles`` give map coordinates directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from pogema import GridConfig
from pogema.envs import Pogema
from pogema.utils import CommonSettings

from envs import metrics as M
from envs.base import MultiAgentEnv, check_seed
from envs.collisions import CollisionResolver
from envs.config import EnvConfig
from envs.fast_grid import POGEMA_CLASSES
from envs.guidance import PathPlanner, Plan
from envs.rewards import DistanceCache, check_reward, compute_rewards, needs_distances, needs_planner

MOVES = np.asarray(CommonSettings().MOVES, dtype=np.int64)  # [5, 2]: wait, up, down, left, right
# Up to this many agents, observations are cut with plain slices in a loop: for a handful of agents
# that is cheaper than one gather over all of them (whose fixed cost is ~5x a slice).
SLICE_OBS_MAX_AGENTS = 8
_SEED_SPACE = 2**31 - 1


@dataclass
class Episode:
    """What a task hands the env at reset: pogema's config for this episode plus labels for logs."""

    grid_config: GridConfig
    seed: int
    labels: dict[str, Any] = field(default_factory=dict)  # e.g. map_name, corridor_length


EpisodeFn = Callable[[int, np.random.Generator], Episode]


def grid_config(**kwargs: Any) -> GridConfig:
    """pogema's GridConfig, with its multi-line validation errors turned into a one-line ValueError."""
    try:
        return GridConfig(**kwargs)
    except (
        ValueError,
        KeyError,
        IndexError,
        AssertionError,
    ) as e:  # pydantic's ValidationError: a ValueError
        errors = getattr(e, "errors", None)
        if callable(errors):
            first = errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "grid"
            msg = f"{where}: {first.get('msg', e)}"
        else:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"invalid pogema grid config ({msg})") from None


class GridEnv(MultiAgentEnv):
    """A pogema-backed :class:`MultiAgentEnv`; ``new_episode(seed, rng)`` describes each episode.

    Seeding: ``reset(seed=s)`` plays the instance pogema builds with ``GridConfig(seed=s)`` and
    re-seeds the stream of later episodes from ``s``; ``reset()`` draws the next episode seed from
    that stream. ``make_env(cfg, seed=s)`` followed by ``reset()`` is the same as ``reset(seed=s)``.
    """

    binary_observations = True  # obstacle / agent / target channels hold 0 or 1 only

    def __init__(self, cfg: EnvConfig, new_episode: EpisodeFn, seed: int | None = None):
        self.cfg = cfg
        self.num_agents = cfg.num_agents
        self.reward_name = check_reward(cfg.reward)
        self.on_target = cfg.on_target
        r = cfg.radius
        # channels: obstacles, agents, own goal (pogema's), then the planned path with planner_path,
        # then the agents that outrank this one with priority_channel, then their next cells
        self._channels = 3 + int(cfg.planner_path) + int(cfg.priority_channel) + int(cfg.intention_channel)
        self._priority_channel = 3 + int(cfg.planner_path) if cfg.priority_channel else -1
        self._intention_channel = self._priority_channel + 1 if cfg.intention_channel else -1
        self.observation_space = gymnasium.spaces.Box(
            0.0, 1.0, shape=(self._channels, 2 * r + 1, 2 * r + 1), dtype=np.float32
        )
        self.action_space = gymnasium.spaces.Discrete(len(MOVES))
        self._r = r
        self._new_episode = new_episode
        self._rng = np.random.default_rng(seed)
        self._pending_seed = seed
        self._dist_cache = DistanceCache() if needs_distances(cfg.reward) else None
        self._planner = (
            PathPlanner(r, cfg.planner_costs, replan_every=cfg.planner_replan_every)
            if cfg.planner_path or needs_planner(cfg.reward)
            else None
        )
        self._plan: Plan | None = None
        # wall time spent planning the planner_path channel in the current episode, its reset included
        # (0 without planner_path): the preprocessing part of a guided policy's decision time, which
        # the evaluation adds to the policy's own (agents.eval.episode)
        self.guidance_seconds = 0.0
        self._arange = np.arange(self.num_agents)
        self._pogema: Pogema | None = None
        self._done = True
        self.episode: Episode | None = None

    # ----------------------------------------------------------------- public state
    @property
    def pogema(self) -> Pogema:
        """The underlying (unwrapped) pogema env of the current episode, kept in sync every step."""
        if self._pogema is None:
            raise RuntimeError("no episode yet; call reset() first")
        return self._pogema

    @property
    def grid_config(self) -> GridConfig:
        """pogema's GridConfig of the current episode."""
        return self.pogema.grid_config

    @property
    def active(self) -> np.ndarray:
        return self._active.copy()

    @property
    def elapsed_steps(self) -> int:
        return self._t

    @property
    def max_episode_steps(self) -> int:
        """Step limit of the current episode (Bottleneck test episodes differ by corridor length)."""
        return self.grid_config.max_episode_steps

    @property
    def obstacles(self) -> np.ndarray:
        """bool [H, W] obstacle map of the current episode in map coordinates (no border)."""
        r = self._r
        return self._obst[r:-r, r:-r].copy()

    def agents_xy(self) -> np.ndarray:
        """int [A, 2] agent positions in map coordinates (finished agents keep their last cell)."""
        return self._pos - self._r

    def targets_xy(self) -> np.ndarray:
        """int [A, 2] current goals in map coordinates."""
        return self._goal - self._r

    # ----------------------------------------------------------------- gym API
    def reset(self, seed: int | None = None) -> tuple[np.ndarray, list[dict]]:
        self._done = True  # until the new episode is fully built
        # the seed given to make_env counts for the first reset only, and an explicit seed replaces it:
        # keeping it after reset(seed=s) made the next reset() replay episode s (issue 15)
        if seed is None:
            seed = self._pending_seed
        self._pending_seed = None
        if seed is not None:
            seed = check_seed(seed)
            self._rng = np.random.default_rng(seed)
        else:
            seed = int(self._rng.integers(_SEED_SPACE))
        self.episode = self._new_episode(seed, self._rng)
        gc = self.episode.grid_config
        if gc.num_agents != self.num_agents:
            raise ValueError(f"the episode has {gc.num_agents} agents but num_agents={self.num_agents}")
        env = self._pogema_env(gc)
        try:
            env.reset(return_info=False)
        except OverflowError as e:
            where = self.episode.labels.get("map_name", "the map")
            raise ValueError(f"cannot place num_agents={self.num_agents} on {where} ({e})") from None
        self._pogema = env
        self._start_episode(env)
        return self._observe(), [{} for _ in range(self.num_agents)]

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[dict]]:
        if self._done:
            raise RuntimeError("the episode is over (or never started); call reset() before step()")
        a = self._check_actions(actions)
        A = self.num_agents
        # numpy calls cost ~1-2 us each here, so the step avoids reductions it can skip (count_nonzero
        # instead of any(), one combined path for agents that all act).
        acting = self._active
        cur = self._cur
        tgt = cur + self._move_flat[a]
        moved = self._resolver(cur, tgt, None if self._all_acting else acting, self._obst_flat)
        n_moved = np.count_nonzero(moved)
        if n_moved:
            new = np.where(moved, tgt, cur)
            # Clear all old cells first: in 'soft' one agent may enter the cell another one leaves.
            self._occ_flat[cur[moved]] = 0.0
            self._occ_flat[tgt[moved]] = 1.0
            self._pos[moved] += MOVES[a[moved]]
        else:
            new = cur
        self._cur = new
        self._t += 1
        t = self._t
        on_goal = new == self._goal_flat

        closer = None
        if self._agent_dist is not None:
            closer = np.fromiter(
                (d[c] - d[n] == 1 for d, c, n in zip(self._agent_dist, cur.tolist(), new.tolist())), bool, A
            )

        if self.on_target == "finish":
            reached = on_goal & acting
            if np.count_nonzero(reached):
                acting = acting.copy()  # rewards below need who acted during this step
                self._active[reached] = False
                self._all_acting = False
                self._occ_flat[new[reached]] = 0.0  # pogema hides finished agents
                self._arrival[reached] = t
                for i in np.flatnonzero(reached).tolist():
                    self._pogema.grid.is_active[i] = False
            terminated = ~self._active
        elif self.on_target == "nothing":
            reached = on_goal & (self._arrival < 0)
            self._arrival[reached] = t
            self._last_arrival[on_goal & ~self._prev_on_goal] = t
            self._prev_on_goal = on_goal
            terminated = np.ones(A, dtype=bool) if np.count_nonzero(on_goal) == A else np.zeros(A, dtype=bool)
        else:  # restart
            reached = on_goal
            terminated = np.zeros(A, dtype=bool)

        # PIBT's rule: a priority grows every step an agent is off its goal and drops when it stands on
        # it (lifelong: the goal reached is replaced below, so the new goal starts at 0 too)
        self._goal_age += 1
        self._goal_age[on_goal] = 0
        on_subgoal = None if self._plan is None else new == self._subgoal
        rewards = compute_rewards(self.reward_name, reached, on_goal, acting, a != 0, closer, on_subgoal)
        if n_moved:
            self._pogema.grid.positions_xy = list(map(tuple, self._pos.tolist()))
        if self.on_target == "restart" and np.count_nonzero(reached):
            self._next_goals(np.flatnonzero(reached))
        if self._planner is not None:
            self._replan()

        truncated = np.ones(A, dtype=bool) if t >= self._limit else np.zeros(A, dtype=bool)
        obs = self._observe()
        infos: list[dict] = [{} for _ in range(A)]
        if t >= self._limit or np.count_nonzero(terminated) == A:
            self._done = True
            m = self._metrics()
            for info in infos:
                info["metrics"] = dict(m)
        return obs, rewards, terminated, truncated, infos

    def render(self) -> str:
        """The map as text: ``#`` obstacle, ``.`` free, agent i as ``0-9a-zA-Z`` (``*`` beyond), ``+`` goal."""
        chars = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
        rows = [["#" if o else "." for o in row] for row in self.obstacles]
        for i in np.flatnonzero(self._active):
            gx, gy = self._goal[i] - self._r
            rows[gx][gy] = "+"
        for i in np.flatnonzero(self._active):
            x, y = self._pos[i] - self._r
            rows[x][y] = chars[i] if i < len(chars) else "*"
        return "\n".join("".join(r) for r in rows)

    # ----------------------------------------------------------------- internals
    def _pogema_env(self, gc: GridConfig) -> Pogema:
        """pogema's env for this episode: one object per GridEnv, given the new config at each reset
        (a fresh one costs gym spaces and RNGs, a third of a Bottleneck reset)."""
        env = self._pogema
        if env is None or env.grid_config.on_target != gc.on_target:
            return POGEMA_CLASSES[gc.on_target](grid_config=gc)
        env.grid_config = gc
        if hasattr(env, "has_custom_sequences"):  # lifelong: set from the config in pogema's __init__
            env.has_custom_sequences = gc.targets_xy is not None
        return env

    def _start_episode(self, env: Pogema) -> None:
        g, A = env.grid, self.num_agents
        self._obst = np.asarray(g.obstacles, dtype=bool)  # [H, W] with the border
        H, W = self._obst.shape
        self._obst_flat = self._obst.ravel()
        obst_f32 = self._obst.astype(np.float32)
        self._pos = np.array(g.positions_xy, dtype=np.int64).reshape(A, 2)
        self._goal = np.array(g.finishes_xy, dtype=np.int64).reshape(A, 2)
        occ = np.zeros((H, W), dtype=np.float32)
        occ[self._pos[:, 0], self._pos[:, 1]] = 1.0
        g.positions = occ  # one occupancy array for pogema and us: pogema's own methods see our moves
        g.positions_xy = list(map(tuple, self._pos.tolist()))
        self._occ, self._obst_f32 = occ, obst_f32
        self._occ_flat = occ.reshape(-1)
        self._windows: tuple[np.ndarray, np.ndarray] | None = None  # built on first gathered observation
        self._W = W
        self._cur = self._pos[:, 0] * W + self._pos[:, 1]
        self._goal_flat = self._goal[:, 0] * W + self._goal[:, 1]
        self._move_flat = MOVES[:, 0] * W + MOVES[:, 1]
        self._resolver = CollisionResolver(env.grid_config.collision_system, H * W)
        self._active = np.ones(A, dtype=bool)
        self._all_acting = True
        self._t = 0
        self._limit = env.grid_config.max_episode_steps
        self._arrival = np.full(A, -1, dtype=np.int64)
        self._last_arrival = np.full(A, -1, dtype=np.int64)
        # An agent that starts on its goal "arrives" at step 1 if it stays (pogema's convention, and
        # what 'finish' mode does too).
        self._prev_on_goal = np.zeros(A, dtype=bool)
        self._goals_reached = 0
        self._goal_age = np.zeros(A, dtype=np.int64)  # PIBT's priority clock (priority_channel)
        if self._dist_cache is not None:
            self._map_dist = self._dist_cache.for_map(~self._obst)
            self._agent_dist = [self._map_dist(tuple(gl)) for gl in self._goal.tolist()]
        else:
            self._agent_dist = None
        self.guidance_seconds = 0.0
        if self._planner is not None:
            self._replan(reset=True)
        self._done = False

    def _replan(self, reset: bool = False) -> None:
        """Plans on the map itself, not pogema's bordered grid: the free cells pogema leaves outside its
        obstacle ring would otherwise enter the static costs' normalisation."""
        r = self._r
        t0 = time.perf_counter()
        if reset:
            self._plan = self._planner.reset(~self._obst[r:-r, r:-r], self._pos - r, self._goal - r)
        else:
            self._plan = self._planner.update(self._pos - r, self._goal - r, self._active)
        x, y = np.divmod(self._plan.next_cell, self._W - 2 * r)
        self._subgoal = (x + r) * self._W + y + r  # flat in the bordered grid, like self._cur
        if self._channels == 4:
            self.guidance_seconds += time.perf_counter() - t0

    def _next_goals(self, agents: np.ndarray) -> None:
        """Lifelong: pogema draws the next goal (its per-agent generators, same sequence as pogema)."""
        self._goals_reached += len(agents)
        env, grid = self._pogema, self._pogema.grid
        for i in agents.tolist():
            gx, gy = env._generate_new_target(i)  # pogema 1.4.0: bordered coordinates
            grid.finishes_xy[i] = (int(gx), int(gy))
            self._goal[i] = (gx, gy)
            self._goal_flat[i] = gx * self._W + gy
            if self._agent_dist is not None:
                self._agent_dist[i] = self._map_dist((int(gx), int(gy)))

    def _observe(self) -> np.ndarray:
        """pogema's default observation: obs [A, 3, d, d] = obstacles, agents, own goal; with
        ``planner_path`` a 4th channel holds the planned path."""
        if self.num_agents <= SLICE_OBS_MAX_AGENTS:
            obs = self._observe_sliced()
        else:
            obs = self._observe_gathered()
        if self._plan is not None and self.cfg.planner_path:
            obs[:, 3] = self._plan.mask
        if self._priority_channel >= 0:
            self._observe_priorities(obs)
        return obs

    def outranks(self) -> np.ndarray:
        """bool [A, A]: ``[i, j]`` = agent j outranks agent i in PIBT's priority rule (``priority_channel``):
        j's current goal is older (steps since j last stood on a goal or got a new one), or as old and
        j < i. Agents not acting (finished) outrank nobody."""
        age = self._goal_age
        older = age[None, :] > age[:, None]
        tie = (age[None, :] == age[:, None]) & (self._arange[None, :] < self._arange[:, None])
        return (older | tie) & self._active[None, :]

    def _observe_priorities(self, obs: np.ndarray) -> None:
        """The priority channel: 1 on the cells of the agents in view that outrank the observing agent;
        the intention channel: 1 on those agents' next planned cells (where in the window)."""
        r = self._r
        delta = self._pos[None, :, :] - self._pos[:, None, :]  # [A, A, 2]: j's cell relative to i's
        seen = np.all(np.abs(delta) <= r, axis=2) & self.outranks()
        i, j = np.nonzero(seen)
        obs[i, self._priority_channel, r + delta[i, j, 0], r + delta[i, j, 1]] = 1.0
        if self._intention_channel >= 0:
            nx, ny = np.divmod(self._plan.next_cell, self._W - 2 * r)  # map coordinates
            nxt = np.stack([nx, ny], axis=1) + r  # [A, 2] in the bordered grid, like self._pos
            to = nxt[j] - self._pos[i]  # j's next cell relative to i's
            ok = np.all(np.abs(to) <= r, axis=1)
            obs[i[ok], self._intention_channel, r + to[ok, 0], r + to[ok, 1]] = 1.0

    def _observe_sliced(self) -> np.ndarray:
        r = self._r
        d = 2 * r + 1
        obs = np.zeros((self.num_agents, self._channels, d, d), dtype=np.float32)
        obst, occ = self._obst_f32, self._occ
        for i, ((x, y), (gx, gy)) in enumerate(zip(self._pos.tolist(), self._goal.tolist())):
            obs[i, 0] = obst[x - r : x + r + 1, y - r : y + r + 1]
            obs[i, 1] = occ[x - r : x + r + 1, y - r : y + r + 1]
            obs[i, 2, r - min(max(x - gx, -r), r), r - min(max(y - gy, -r), r)] = 1.0
        return obs

    def _observe_gathered(self) -> np.ndarray:
        r = self._r
        d = 2 * r + 1
        if self._windows is None:
            # (H-2r, W-2r, d, d) views: window [x-r, y-r] is the d x d patch centred on (x, y)
            self._windows = (
                sliding_window_view(self._obst_f32, (d, d)),
                sliding_window_view(self._occ, (d, d)),
            )
        win_obst, win_occ = self._windows
        corner = (self._pos - r).T
        obs = np.zeros((self.num_agents, self._channels, d, d), dtype=np.float32)
        obs[:, 0] = win_obst[corner[0], corner[1]]
        obs[:, 1] = win_occ[corner[0], corner[1]]
        # Goal channel: the goal's cell, or its projection onto the window border when out of view.
        d = self._pos - self._goal
        np.maximum(d, -r, out=d)
        np.minimum(d, r, out=d)
        obs[self._arange, 2, r - d[:, 0], r - d[:, 1]] = 1.0
        return obs

    def _check_actions(self, actions: np.ndarray) -> np.ndarray:
        a = np.asarray(actions)
        if a.shape != (self.num_agents,):
            raise ValueError(f"actions must have shape ({self.num_agents},), got {a.shape}")
        if a.dtype != np.int64:
            if a.dtype.kind == "f" and np.all(a == np.round(a)):
                pass  # integral floats from generic samplers
            elif a.dtype.kind not in "iu":
                raise ValueError(f"actions must be integers 0..{len(MOVES) - 1}, got dtype {a.dtype}")
            a = a.astype(np.int64)
        # One comparison catches both ends: negative values become huge as unsigned.
        if np.count_nonzero(a.view(np.uint64) >= len(MOVES)):
            bad = a[(a < 0) | (a >= len(MOVES))][0]
            raise ValueError(
                f"action {bad} is out of range; allowed: 0..{len(MOVES) - 1} (wait, up, down, left, right)"
            )
        return a

    def _metrics(self) -> dict[str, float]:
        t = self._t
        if self.on_target == "restart":
            return M.episode_metrics("restart", t, goals_reached=self._goals_reached)
        if self.on_target == "nothing":
            arrival = M.arrival_steps_nothing(self._last_arrival, self._prev_on_goal)
            return M.episode_metrics("nothing", t, arrival)
        return M.episode_metrics("finish", t, self._arrival)
