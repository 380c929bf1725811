"""Playing one episode of any :class:`~agents.planners.base.Algorithm` in srmt's own env (``envs``).

Recording and evaluation share this loop, so the expert, the random agent and the RATE policy see the
same dynamics, seeds and metrics (the env's own ``infos[i]["metrics"]``: CSR/ISR/SoC/makespan, or
throughput in lifelong mode).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from agents.planners.base import Algorithm, WorldState
from envs.config import EnvConfig


@dataclass
class Transition:
    """One step as the recorder stores it (agent axis first)."""

    obs: np.ndarray
    """float32 [A, C, H, W] observation the action was chosen on."""
    actions: np.ndarray
    """int64 [A] actions taken (after epsilon replacement)."""
    rewards: np.ndarray
    """float32 [A] the env's rewards for this step."""
    dones: np.ndarray
    """bool [A] terminated or truncated after this step."""
    active: np.ndarray
    """bool [A] the agent acted in this step."""
    labels: np.ndarray
    """int64 [A] the expert's own actions in this state: the acting algorithm's before the epsilon
    replacement, or the ``labeler``'s when one is given (the training targets)."""


def world_state(env, obs: np.ndarray, step: int = 0) -> WorldState:
    """The :class:`WorldState` of a :class:`envs.GridEnv` (pogema's bordered coordinates); for any other
    env an observation-only state (no map: empty obstacles, zero positions and goals), enough for the
    policies that act on observations (the RATE policy, the T-Maze expert). ``step`` is the episode step
    for envs that do not count it themselves."""
    from envs.grid_env import GridEnv

    if not isinstance(env, GridEnv):
        A = int(env.num_agents)
        return WorldState(
            obstacles=np.zeros((0, 0), dtype=np.int64),
            positions=np.zeros((A, 2), dtype=np.int64),
            goals=np.zeros((A, 2), dtype=np.int64),
            active=np.asarray(env.active, dtype=bool),
            obs_radius=0,
            on_target="finish",
            step=int(getattr(env, "elapsed_steps", step)),
            observations=obs,
        )
    r = int(env.grid_config.obs_radius)
    return WorldState(
        obstacles=np.asarray(env.pogema.get_obstacles(), dtype=np.int64),
        positions=np.asarray(env.agents_xy() + r, dtype=np.int64),
        goals=np.asarray(env.targets_xy() + r, dtype=np.int64),
        active=np.asarray(env.active, dtype=bool),
        obs_radius=r,
        on_target=env.on_target,
        step=int(env.elapsed_steps),
        observations=obs,
    )


def build_expert(name: str, env_cfg: EnvConfig | None = None) -> Algorithm:
    """``pibt``, ``astar``, ``random`` or ``tmaze`` (the T-Maze's optimal policy) as an :class:`Algorithm`.

    With ``env_cfg.priority_channel`` PIBT breaks ties the way the observation shows them: between
    agents by index (that channel's order) and, with the path channel on ``unit`` costs, between equally
    short moves by the path's move (``EnvConfig.priority_channel``)."""
    if name == "pibt":
        from agents.planners.pibt import PIBT

        if env_cfg is None or not env_cfg.priority_channel:
            return PIBT()
        fixed = env_cfg.planner_path and env_cfg.planner_costs == "unit"
        return PIBT(tie_break="index", move_ties="fixed" if fixed else "random")
    if name == "astar":
        from agents.planners.astar import AStar

        return AStar()
    if name == "random":
        from agents.planners.random_agent import RandomAgent

        return RandomAgent()
    if name == "tmaze":
        from agents.offline.tmaze import TMazeExpert

        return TMazeExpert()
    raise ValueError(f"unknown expert {name!r}; allowed: pibt, astar, random, tmaze")


def play_episode(
    env,
    algorithm: Algorithm,
    seed: int,
    *,
    epsilon: float = 0.0,
    rng: np.random.Generator | None = None,
    on_step: Callable[[Transition], None] | None = None,
    labeler: Algorithm | None = None,
) -> dict[str, float]:
    """Play one episode of ``env`` (reset with ``seed``) to its end and return the env's metrics.

    With ``epsilon`` > 0 each agent's action is replaced by a uniformly random one with that probability
    (``rng`` draws). An algorithm with an ``observe(rewards)`` method gets every step's rewards (the RATE
    policy subtracts them from its return-to-go). ``labeler`` (DAgger): an expert that is asked for its
    action in every state the acting ``algorithm`` reaches (``Transition.labels``) but never acts; it
    sees the same states as if it played, so a stateful expert (PIBT's priorities) stays current.

    Grid envs add ``blocked`` to the metrics: the fraction of the active agents' moves (actions other
    than wait) after which the agent stood where it was (into an obstacle or, far more often for an
    imitation policy, an agent that did not make way): 0 for PIBT, whose plans are conflict-free.
    """
    obs, _ = env.reset(seed=seed)
    t = 0
    state = world_state(env, obs, t)
    algorithm.reset(state, seed)
    if labeler is not None:
        labeler.reset(state, seed)
    observe = getattr(algorithm, "observe", None)
    n_actions = int(env.action_space.n)
    rng = rng if rng is not None else np.random.default_rng(seed)
    grid = hasattr(env, "agents_xy")  # positions are known (not the observation-only envs)
    moves = blocked = 0
    while True:
        actions = np.asarray(algorithm.act(state), dtype=np.int64)
        labels = actions if labeler is None else np.asarray(labeler.act(state), dtype=np.int64)
        if epsilon > 0:
            explore = rng.random(actions.shape[0]) < epsilon
            actions = np.where(explore, rng.integers(n_actions, size=actions.shape[0]), actions)
        active = state.active
        next_obs, rewards, terminated, truncated, infos = env.step(actions)
        dones = np.asarray(terminated) | np.asarray(truncated)
        if on_step is not None:
            on_step(Transition(obs, actions, np.asarray(rewards, dtype=np.float32), dones, active, labels))
        if observe is not None:
            observe(np.asarray(rewards, dtype=np.float32))
        obs = next_obs
        t += 1
        before = state.positions
        state = world_state(env, obs, t)
        if grid:
            tried = np.asarray(active, dtype=bool) & (actions != 0)
            moves += int(tried.sum())
            blocked += int((tried & np.all(state.positions == before, axis=1)).sum())
        if np.all(terminated) or np.all(truncated):
            metrics = {k: float(v) for k, v in infos[0]["metrics"].items()}
            if grid:
                metrics["blocked"] = blocked / max(moves, 1)
            return metrics


def make_eval_env(env_cfg: EnvConfig, seed: int = 0):
    from envs import make_env

    return make_env(env_cfg, seed=seed)
