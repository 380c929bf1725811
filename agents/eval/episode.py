"""One evaluation episode: an :class:`Instance`, an env backend that runs it, and the metric bookkeeping.

An instance is a map-set problem (:class:`Instance`) or, for an *env task*, one seeded episode of a
registered env (:class:`EnvInstance`: ``eval.env``, or the training env of a policy trained on a
non-grid env). Two backends run the same map-set instance:

- ``pogema``: ``pogema.pogema_v0`` itself, i.e. the dynamics the published POGEMA benchmark results were
  produced with. Planners run here by default.
- ``envs``: ``envs.make_env`` (srmt's vectorised POGEMA env), whose observations are what srmt models
  are trained on. Trained srmt checkpoints need it.

Metrics are computed here, from positions and goals, the same way for both backends and with the
pogema-toolbox names (``avg_throughput``; ``CSR ISR SoC makespan ep_length``; ``runtime``), so our rows
sit next to the published ones. An env task reports the env's own metrics instead (its final
``infos[i]["metrics"]``), plus ``return`` (mean undiscounted return per agent, unless the env reports
its own) and ``ep_length``. ``runtime`` is the seconds spent inside the algorithm per episode
(environment stepping excluded), as pogema's ``RuntimeMetricWrapper`` measures it. On the ``envs``
backend it also holds the env's planning of the ``planner_path`` observation channel
(``GridEnv.guidance_seconds``, reset included): in the POGEMA benchmark Follower's planner runs in a
preprocessing wrapper outside that ``RuntimeMetricWrapper``, so its runtime includes the planner, and
so does FollowerLite's here (its planner runs inside ``act``).
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
    def mode(self) -> str:
        """The results' mode: ``lifelong`` or ``classic``."""
        return "lifelong" if self.lifelong else "classic"

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


@dataclass
class EnvInstance:
    """One seeded episode of a registered env (an env task). ``env`` is the :class:`envs.config.EnvConfig`
    as a plain dict (its plugin included), so that it travels to worker processes and Dask workers and
    is rebuilt there (importing the plugin)."""

    env: dict
    seed: int
    num_agents: int
    max_episode_steps: int = 0
    """The env's step limit when its config sets one (scheduling only); 0 = unknown."""

    mode = "env"

    @property
    def map_set(self) -> str:
        """The results' map-set column: the env's name."""
        return str(self.env["name"])

    @property
    def map_name(self) -> str:
        """The results' map column: the env's name and a digest of its config, so that two configs of one
        env are two instances (the plugin's path is left out: the same env from another folder matches)."""
        return f"{self.map_set}:{env_digest(self.env)}"

    @property
    def cost(self) -> int:
        return self.num_agents * (self.max_episode_steps or 1)

    def env_config(self) -> Any:
        import configs
        from envs.config import EnvConfig

        return configs.load(EnvConfig, self.env)


def env_digest(env: dict) -> str:
    import hashlib
    import json

    data = {k: v for k, v in env.items() if k != "plugin"}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:8]


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
            num_agents_choices=[],  # a model trained on mixed counts plays the instance's count, unpadded
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

    def algorithm_seconds(self) -> float:
        """The part of this episode's env time that is the algorithm's preprocessing: the planner of
        the ``planner_path`` channel (0 for envs without one)."""
        return float(getattr(self.env, "guidance_seconds", 0.0))


class TaskEpisodeEnv:
    """An env task's episode: the registered env of an :class:`EnvInstance`, no grid assumed.

    Algorithms see ``active``, ``observations`` and ``num_actions`` (``WorldState.grid`` is False); the
    metrics are the env's own (:meth:`metrics`)."""

    def __init__(self, instance: EnvInstance) -> None:
        from envs import make_env

        self.instance = instance
        self.env = make_env(instance.env_config(), seed=instance.seed)
        self.num_actions = int(self.env.action_space.n)
        self.max_episode_steps = instance.max_episode_steps
        self._none = np.zeros((self.env.num_agents, 0), dtype=np.int64)
        self._step = 0
        self.returns = np.zeros(self.env.num_agents, dtype=np.float64)
        self.last_rewards = np.zeros(self.env.num_agents, dtype=np.float32)
        self.last_infos: list[dict] = []

    def _state(self, obs: np.ndarray) -> WorldState:
        return WorldState(
            obstacles=np.zeros((0, 0), dtype=np.int64),
            positions=self._none,
            goals=self._none,
            active=np.asarray(self.env.active, dtype=bool),
            obs_radius=0,
            on_target="",
            step=self._step,
            observations=obs,
            num_actions=self.num_actions,
            grid=False,
        )

    def reset(self) -> WorldState:
        obs, _ = self.env.reset(seed=self.instance.seed)
        self._step = 0
        self.returns[:] = 0.0
        return self._state(obs)

    def step(self, actions: np.ndarray) -> tuple[WorldState, bool]:
        obs, rewards, terminated, truncated, infos = self.env.step(np.asarray(actions, dtype=np.int64))
        self._step += 1
        self.last_rewards = np.asarray(rewards, dtype=np.float32)
        self.returns += self.last_rewards
        self.last_infos = infos
        return self._state(obs), bool(np.all(np.asarray(terminated) | np.asarray(truncated)))

    def metrics(self) -> dict[str, float]:
        """The env's final ``infos[0]["metrics"]``, with ``return`` (when the env has none) and ``ep_length``."""
        own = (self.last_infos[0].get("metrics") if self.last_infos else None) or {}
        out = {"return": float(self.returns.mean())}
        out.update({str(k): float(v) for k, v in own.items()})
        out["ep_length"] = float(self._step)
        return out

    def close(self) -> None:
        self.env.close()


def make_episode_env(
    instance: Instance | EnvInstance, backend: Backend = "pogema", env_base: Any = None
) -> EpisodeEnv:
    """The env that runs ``instance``: an env task's own env, else the map-set instance on ``backend``."""
    if isinstance(instance, EnvInstance):
        return TaskEpisodeEnv(instance)
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
    actions: list[np.ndarray] = field(default_factory=list)
    """The actions of each step (index 0 = the first step)."""
    rewards: list[np.ndarray] = field(default_factory=list)
    """Env tasks: the rewards of each step (map-set backends record none)."""


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
        if traj is not None:
            traj.actions.append(actions)
            if isinstance(env, TaskEpisodeEnv):
                traj.rewards.append(env.last_rewards)
        if isinstance(env, TaskEpisodeEnv):
            continue  # no grid: the env reports its own metrics
        # lifelong: a reached goal is replaced within the same step, so compare with the goal it had
        on_goal.append(np.all(state.positions == goals_before, axis=1) & active_before)
    if traj is not None:
        traj.positions.append(state.positions)
        traj.goals.append(state.goals)
        traj.active.append(state.active)
    if isinstance(env, TaskEpisodeEnv):
        metrics = env.metrics()
        env.close()
    else:
        metrics = episode_metrics(state.on_target, np.stack(on_goal), env.max_episode_steps)
    metrics["runtime"] = runtime + (env.algorithm_seconds() if isinstance(env, EnvsEpisodeEnv) else 0.0)
    return metrics, traj
