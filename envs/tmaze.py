"""T-Maze: the passive memory task of RATE (arXiv 2306.09459) and of "Unraveling the complexity of memory
in RL agents", after the passive T-Maze of Ni et al. ("When do transformers shine in RL?").

A corridor of L cells ends in a junction with an arm up and an arm down::

                         up arm
    x = 0  1  2  ...  L  <- junction
                         down arm

The agent starts at x = 0. Its first observation (step 0 only) shows the **cue**, up or down; afterwards
it sees only whether it stands at the junction. At the junction, ``up`` or ``down`` ends the agent's
episode: reward +1 if it is the side the cue named, 0 otherwise. No other step is rewarded. Moving up or
down inside the corridor, or right at the junction, leaves the agent where it is.

The shortest episode is L + 1 steps (L moves right, one turn), and that is the default step limit, as in
the passive T-Maze: any detour times out. ``env.max_episode_steps`` allows more. A policy without memory
succeeds with probability 1/2: nothing it sees after step 0 depends on the cue.

Observation: float32 ``(3, 1, 1)`` (channels: cue up, cue down, at the junction), all 0 or 1.
Actions: pogema's order (``agents.planners.base.MOVES``): 0 stay, 1 up, 2 down, 3 left, 4 right.

``num_agents`` agents are **independent** copies (each its own cue, all of one corridor length, drawn per
episode from ``env.options.corridor_lengths``): nothing one agent does or sees depends on another, so an
env of G agents plays G episodes in lockstep (the offline evaluation batches episodes that way).

Episode metrics: ``success`` (share of agents that turned to the cued side), ``ISR`` (the same),
``CSR`` (1 if every agent succeeded), ``makespan`` / ``episode_length`` (steps), ``corridor_length``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gymnasium
import numpy as np

from envs.base import MultiAgentEnv, check_actions, check_seed
from envs.config import EnvConfig

MAX_TMAZE_LENGTH = 10_000_000
"""Longest corridor (a bound on typos, not on memory: the env stores no map)."""
DEFAULT_LENGTH = 10
DEFAULT_NUM_AGENTS = 1
STAY, UP, DOWN, LEFT, RIGHT = range(5)
NUM_ACTIONS = 5
CUE_UP, CUE_DOWN, JUNCTION = range(3)
"""Observation channels."""
_SEED_SPACE = 2**63 - 1


@dataclass
class TMazeOptions:
    """``env.options`` of the ``tmaze`` env."""

    corridor_lengths: list[int] = field(default_factory=lambda: [DEFAULT_LENGTH])
    """T-Maze corridor lengths L (cells from the start to the junction), one drawn uniformly per episode
    (all agents of an env share it); the default step limit is L + 1, the shortest path."""

    def __post_init__(self) -> None:
        if not self.corridor_lengths:
            raise ValueError(f"corridor_lengths is empty; give at least one length in 1..{MAX_TMAZE_LENGTH}")
        for length in self.corridor_lengths:
            check_length(length)


def check_length(length: object) -> int:
    """A corridor length as int, or a one-line ValueError naming it and the allowed range."""
    if (
        isinstance(length, bool)
        or not isinstance(length, (int, np.integer))
        or not 1 <= length <= MAX_TMAZE_LENGTH
    ):
        raise ValueError(
            f"T-Maze corridor length {length!r} is invalid; allowed: integers in 1..{MAX_TMAZE_LENGTH}"
        )
    return int(length)


def tmaze_config(length: int, num_agents: int = DEFAULT_NUM_AGENTS, **overrides) -> EnvConfig:
    """EnvConfig of the ``tmaze`` env with one corridor length."""
    options = {**overrides.pop("options", {}), "corridor_lengths": [check_length(length)]}
    return EnvConfig(**{**overrides, "name": "tmaze", "num_agents": num_agents, "options": options})


class TMazeEnv(MultiAgentEnv):
    """The T-Maze (module docstring); numpy only, vectorised over the agents."""

    binary_observations = True

    def __init__(self, cfg: EnvConfig, seed: int | None = None) -> None:
        opts: TMazeOptions = cfg.opts
        self.num_agents = int(cfg.num_agents or DEFAULT_NUM_AGENTS)
        self.lengths = [check_length(x) for x in opts.corridor_lengths]
        self._limit_override = cfg.max_episode_steps
        self.observation_space = gymnasium.spaces.Box(0.0, 1.0, shape=(3, 1, 1), dtype=np.float32)
        self.action_space = gymnasium.spaces.Discrete(NUM_ACTIONS)
        A = self.num_agents
        self._pending_seed = seed
        self._rng = np.random.default_rng(seed)
        self._x = np.zeros(A, dtype=np.int64)
        self._cue = np.zeros(A, dtype=np.int64)  # UP or DOWN
        self._active = np.zeros(A, dtype=bool)
        self._success = np.zeros(A, dtype=bool)
        self._t = 0
        self._length = self.lengths[0]
        self._limit = self._length + 1
        self._done = True

    # ----------------------------------------------------------------- state
    @property
    def active(self) -> np.ndarray:
        return self._active.copy()

    @property
    def elapsed_steps(self) -> int:
        return self._t

    @property
    def corridor_length(self) -> int:
        """L of the current episode."""
        return self._length

    @property
    def max_episode_steps(self) -> int:
        """Step limit of the current episode: ``env.max_episode_steps`` or L + 1."""
        return self._limit

    @property
    def cues(self) -> np.ndarray:
        """int [A] the side each agent's cue names: 1 (up) or 2 (down), the action that succeeds."""
        return self._cue.copy()

    @property
    def positions(self) -> np.ndarray:
        """int [A] each agent's cell, 0 (start) .. L (junction)."""
        return self._x.copy()

    # ----------------------------------------------------------------- gym API
    def reset(self, seed: int | None = None) -> tuple[np.ndarray, list[dict]]:
        # as GridEnv: the seed given to make_env counts for the first reset only; an explicit one replaces it
        if seed is None:
            seed = self._pending_seed
        self._pending_seed = None
        if seed is not None:
            self._rng = np.random.default_rng(check_seed(seed))
        else:
            self._rng = np.random.default_rng(int(self._rng.integers(_SEED_SPACE)))
        rng = self._rng
        self._length = (
            self.lengths[int(rng.integers(len(self.lengths)))] if len(self.lengths) > 1 else self.lengths[0]
        )
        self._limit = self._limit_override or self._length + 1
        A = self.num_agents
        self._cue = np.where(rng.random(A) < 0.5, UP, DOWN).astype(np.int64)
        self._x[:] = 0
        self._active[:] = True
        self._success[:] = False
        self._t = 0
        self._done = False
        return self._observe(), [{} for _ in range(A)]

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[dict]]:
        if self._done:
            raise RuntimeError("the episode is over (or never started); call reset() before step()")
        a = check_actions(actions, self.num_agents, NUM_ACTIONS)
        A = self.num_agents
        acting = self._active
        at_junction = self._x == self._length
        turned = acting & at_junction & ((a == UP) | (a == DOWN))
        moves = np.where(a == RIGHT, 1, np.where(a == LEFT, -1, 0))
        self._x = np.where(acting & ~turned, np.clip(self._x + moves, 0, self._length), self._x)
        won = turned & (a == self._cue)
        self._success |= won
        rewards = won.astype(np.float32)
        self._active = acting & ~turned
        self._t += 1
        terminated = ~self._active
        truncated = np.full(A, self._t >= self._limit)
        obs = self._observe()
        infos: list[dict] = [{} for _ in range(A)]
        if self._t >= self._limit or not self._active.any():
            self._done = True
            m = self._metrics()
            for info in infos:
                info["metrics"] = dict(m)
        return obs, rewards, terminated, truncated, infos

    def _observe(self) -> np.ndarray:
        A = self.num_agents
        obs = np.zeros((A, 3, 1, 1), dtype=np.float32)
        if self._t == 0:
            obs[:, CUE_UP, 0, 0] = self._cue == UP
            obs[:, CUE_DOWN, 0, 0] = self._cue == DOWN
        obs[:, JUNCTION, 0, 0] = self._active & (self._x == self._length)
        return obs

    def _metrics(self) -> dict[str, float]:
        success = float(np.mean(self._success))
        return {
            "success": success,
            "ISR": success,
            "CSR": float(np.all(self._success)),
            "makespan": float(self._t),
            "episode_length": float(self._t),
            "corridor_length": float(self._length),
        }

    def render(self) -> str:
        """One line per agent: the corridor with the agent's cell as ``A`` and the cue as ``^`` / ``v``."""
        lines = []
        for i in range(self.num_agents):
            cells = ["."] * (self._length + 1)
            cells[int(self._x[i])] = "A" if self._active[i] else ("+" if self._success[i] else "x")
            lines.append(("^" if self._cue[i] == UP else "v") + " " + "".join(cells))
        return "\n".join(lines)


def build_tmaze(cfg: EnvConfig, seed: int | None = None) -> TMazeEnv:
    """``tmaze``: the passive T-Maze (module docstring)."""
    return TMazeEnv(cfg, seed)
