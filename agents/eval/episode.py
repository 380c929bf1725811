"""One evaluation episode: an :class:`Instance`, an env backend that runs it, and the metric bookkeeping.

Two backends run the same instance:

- ``pogema``: ``pogema.pogema_v0`` itself, i.e. the dynamics the published POGEMA benchmark results were
  produced with. Planners run here by default.
- ``envs``: ``envs.make_env`` (srmt's vectorised POGEMA env), whose observations are what srmt models
  are trained on. Trained srmt checkpoints need it.

Metrics are computed here, from positions and goals, the same way for both backends and with the
pogema-toolbox names (``avg_throughput``; ``CSR ISR SoC makespan ep_length``; ``runtime``), so our rows
sit next to the published ones. ``runtime`` is the seconds spent inside the algorithm per episode
(environment stepping excluded), as pogema's ``RuntimeMetricWrapper`` measures it.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

import numpy as np

from agents.planners.base import Algorithm, WorldState
from envs import metrics as M

Backend = Literal["pogema", "envs"]


@dataclass
class Instance:
    """One MAPF / LMAPF problem: a map, a number of agents, a seed and optionally frozen starts/goals."""

    map_set: str
    map_name: str
    map: str
    """pogema map string (``.`` free, ``#`` obstacle)."""
    num_agents: int
    seed: int = 0
    on_target: str = "restart"
    max_episode_steps: int = 256
    collision_system: str = "soft"
    obs_radius: int = 5
    agents_xy: list | None = None
    """Frozen starts (exactly ``num_agents``), map coordinates; None = pogema generates them from ``seed``."""
    targets_xy: list | None = None
    """Frozen goals (classic) or goal sequences (lifelong), one per agent; None = generated."""

    @property
    def lifelong(self) -> bool:
        return self.on_target == "restart"

    @property
    def cost(self) -> int:
        """Rough work estimate, for scheduling the biggest episodes first."""
        return self.num_agents * self.max_episode_steps

    def grid_config(self):
        from pogema import GridConfig

        return GridConfig(
            map=self.map,
            map_name=self.map_name,
            num_agents=self.num_agents,
            seed=self.seed,
            on_target=self.on_target,
            max_episode_steps=self.max_episode_steps,
            collision_system=self.collision_system,
            obs_radius=self.obs_radius,
            observation_type="POMAPF",
            agents_xy=self.agents_xy,
            targets_xy=self.targets_xy,
        )


class EpisodeEnv(Protocol):
    """What :func:`run_episode` needs from a backend."""

    max_episode_steps: int

    def reset(self) -> WorldState: ...

    def step(self, actions: np.ndarray) -> tuple[WorldState, bool]: ...


class PogemaEpisodeEnv:
    """The instance in pogema 1.4.0 itself (the published results' dynamics)."""

    def __init__(self, instance: Instance) -> None:
        from pogema import pogema_v0

        self.instance = instance
        self.env = pogema_v0(instance.grid_config())
        self.max_episode_steps = instance.max_episode_steps
        self._obstacles: np.ndarray = np.zeros((0, 0), dtype=np.int64)
        self._step = 0
        self.last_infos: list[dict] = []

    def _state(self, obs: Any) -> WorldState:
        grid = (
            self.env.unwrapped.grid
        )  # read directly: pogema's getters deep-copy, which costs more than a step
        return WorldState(
            obstacles=self._obstacles,
            positions=np.array(grid.positions_xy, dtype=np.int64),
            goals=np.array(grid.finishes_xy, dtype=np.int64),
            active=np.fromiter((grid.is_active[i] for i in range(self.instance.num_agents)), bool),
            obs_radius=self.instance.obs_radius,
            on_target=self.instance.on_target,
            step=self._step,
            observations=obs,
        )

    def reset(self) -> WorldState:
        obs, _ = self.env.reset(seed=self.instance.seed)
        self._obstacles = np.asarray(self.env.unwrapped.get_obstacles(), dtype=np.int64)
        self._step = 0
        return self._state(obs)

    def step(self, actions: np.ndarray) -> tuple[WorldState, bool]:
        obs, _, terminated, truncated, infos = self.env.step([int(a) for a in actions])
        self._step += 1
        self.last_infos = infos
        return self._state(obs), bool(all(terminated) or all(truncated))


class EnvsEpisodeEnv:
    """The instance in srmt's own env (``envs.make_env``), e.g. with a trained model's observation config.

    ``base`` is the env config to start from (a checkpoint's ``ExperimentConfig.env``): its observation
    settings are kept, the instance's map, agents, goals, rules and step limit replace the rest.
    """

    def __init__(self, instance: Instance, base: Any = None) -> None:
        from envs import make_env
        from envs.config import EnvConfig

        self.instance = instance
        base = base if base is not None else EnvConfig(name="pogema", obs_radius=instance.obs_radius)
        cfg = replace(
            base,
            name="pogema",
            # the base task's radius in force (a Bottleneck-trained model keeps its observation size), and
            # no task-specific options of the base (corridor lengths) on a benchmark map
            obs_radius=base.radius,
            options={},
            map=instance.map,
            maps_file=None,
            map_name=None,
            map_names=[],
            num_agents=instance.num_agents,
            on_target=instance.on_target,
            collision_system=instance.collision_system,
            max_episode_steps=instance.max_episode_steps,
            agents_xy=instance.agents_xy,
            targets_xy=instance.targets_xy,
        )
        self.env = make_env(cfg, seed=instance.seed)
        self.max_episode_steps = instance.max_episode_steps
        self._obstacles: np.ndarray = np.zeros((0, 0), dtype=np.int64)
        self._step = 0
        self.last_infos: list[dict] = []

    def _state(self, obs: np.ndarray) -> WorldState:
        r = int(self.env.pogema.grid_config.obs_radius)
        if hasattr(self.env, "agents_xy"):  # GridEnv: map coordinates, no deep copies
            positions, goals = self.env.agents_xy() + r, self.env.targets_xy() + r
        else:  # any env honouring the contract: pogema's accessors, bordered coordinates
            positions, goals = self.env.pogema.get_agents_xy(), self.env.pogema.get_targets_xy()
        return WorldState(
            obstacles=self._obstacles,
            positions=np.asarray(positions, dtype=np.int64),
            goals=np.asarray(goals, dtype=np.int64),
            active=np.asarray(self.env.active, dtype=bool),
            obs_radius=r,
            on_target=self.instance.on_target,
            step=self._step,
            observations=obs,
        )

    def reset(self) -> WorldState:
        obs, _ = self.env.reset(seed=self.instance.seed)
        self._obstacles = np.asarray(self.env.pogema.get_obstacles(), dtype=np.int64)
        self._step = 0
        return self._state(obs)

    def step(self, actions: np.ndarray) -> tuple[WorldState, bool]:
        obs, _, terminated, truncated, infos = self.env.step(np.asarray(actions, dtype=np.int64))
        self._step += 1
        self.last_infos = infos
        return self._state(obs), bool(np.all(terminated) or np.all(truncated))


def make_episode_env(instance: Instance, backend: Backend = "pogema", env_base: Any = None) -> EpisodeEnv:
    if backend == "pogema":
        return PogemaEpisodeEnv(instance)
    if backend == "envs":
        return EnvsEpisodeEnv(instance, env_base)
    raise ValueError(f"unknown env backend {backend!r}; allowed: pogema, envs")


# --------------------------------------------------------------------------------------------- metrics


def episode_metrics(on_target: str, on_goal: np.ndarray, max_episode_steps: int) -> dict[str, float]:
    """Metrics of one episode from ``on_goal`` bool [T, A]: agent a stands on its (then) goal after step t+1.

    Lifelong: ``avg_throughput`` = goals reached / ``max_episode_steps``. Classic (``nothing``): an agent
    arrived at the step it last stepped onto its goal, if it stands there at the end; ``finish``: at its
    first arrival (it then leaves the grid). Both report CSR, ISR, SoC, makespan and ``ep_length``.
    """
    T, A = on_goal.shape
    if T == 0:
        raise ValueError("an episode needs at least one step to have metrics")
    if on_target == "restart":
        return {"avg_throughput": M.throughput(int(on_goal.sum()), max_episode_steps), "ep_length": float(T)}
    steps = np.arange(1, T + 1)[:, None]  # [T, 1]
    if on_target == "nothing":
        # the step of the last arrival: last step on goal whose predecessor (or the start) was off goal
        prev = np.vstack([np.zeros((1, A), dtype=bool), on_goal[:-1]])
        arrivals = np.where(on_goal & ~prev, steps, 0)  # [T, A]
        arrival = M.arrival_steps_nothing(arrivals.max(0), on_goal[-1])
    elif on_target == "finish":
        first = np.where(on_goal, steps, T + 1).min(0)
        arrival = np.where(first <= T, first, -1)
    else:
        raise ValueError(f"unknown on_target {on_target!r}; allowed: finish, nothing, restart")
    return {
        "ISR": M.isr(arrival),
        "CSR": M.csr(arrival),
        "ep_length": float(T),
        "SoC": M.sum_of_costs(arrival, T),
        "makespan": M.makespan(arrival, T),
    }


@dataclass
class Trajectory:
    """Positions and goals per step, for animations (index 0 = after reset)."""

    obstacles: np.ndarray
    obs_radius: int
    positions: list[np.ndarray] = field(default_factory=list)
    goals: list[np.ndarray] = field(default_factory=list)
    active: list[np.ndarray] = field(default_factory=list)


def run_episode(
    env: EpisodeEnv, algorithm: Algorithm, seed: int, record: bool = False
) -> tuple[dict[str, float], Trajectory | None]:
    """Run one episode to its end; returns its metrics (with ``runtime``) and, if asked, the trajectory."""
    with warnings.catch_warnings():
        # pogema warns when an agent has used up a frozen goal sequence and cycles it; the benchmark's
        # sequences cover the episode by construction (an agent in a 2-cell pocket ends exactly there)
        warnings.filterwarnings("ignore", message=r"Agent \d+ has completed all", category=UserWarning)
        return _run_episode(env, algorithm, seed, record)


def _run_episode(
    env: EpisodeEnv, algorithm: Algorithm, seed: int, record: bool
) -> tuple[dict[str, float], Trajectory | None]:
    state = env.reset()
    algorithm.reset(state, seed)
    traj = Trajectory(state.obstacles, state.obs_radius) if record else None
    on_goal: list[np.ndarray] = []
    runtime = 0.0
    done = False
    while not done:
        if traj is not None:
            traj.positions.append(state.positions)
            traj.goals.append(state.goals)
            traj.active.append(state.active)
        t0 = time.perf_counter()
        actions = np.asarray(algorithm.act(state), dtype=np.int64)
        runtime += time.perf_counter() - t0
        if actions.shape != (state.num_agents,):
            raise ValueError(
                f"algorithm returned actions of shape {actions.shape}; expected ({state.num_agents},)"
            )
        goals_before, active_before = state.goals, state.active
        state, done = env.step(actions)
        # lifelong: a reached goal is replaced within the same step, so compare with the goal it had
        on_goal.append(np.all(state.positions == goals_before, axis=1) & active_before)
    if traj is not None:
        traj.positions.append(state.positions)
        traj.goals.append(state.goals)
        traj.active.append(state.active)
    metrics = episode_metrics(state.on_target, np.stack(on_goal), env.max_episode_steps)
    metrics["runtime"] = runtime
    return metrics, traj
