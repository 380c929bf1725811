"""Vector envs: ``k`` environments of one config stepped as one, with per-env auto-reset (numpy only).

A trainer's rollout worker steps many small environments (Bottleneck: 2 agents each, 128 per worker
split); stepping them one after the other in Python costs ~30 numpy calls per environment and step.
A :class:`VectorEnv` steps all ``k`` at once. The contract (agents of env ``i`` are rows
``i*A .. (i+1)*A-1``, in order):

- ``reset() -> obs [k*A, *obs_shape]``: the first episode of every env (env ``i`` plays seed
  ``seeds[i]``, as ``make_env(cfg, seed=seeds[i])`` followed by ``reset()`` does);
- ``step(actions [k*A] or [k, A]) -> (obs, rewards [k, A] float32, terminated [k, A], truncated [k, A],
  ended [k] bool, metrics)``: ``rewards`` / ``terminated`` / ``truncated`` are those of the step just
  played; an env whose episode ended on it is reset at once (its own random stream, as ``reset()`` of
  the single env), so ``obs`` already shows the new episode's first observation for it; ``metrics[i]``
  is that ended episode's metrics dict, None for the other envs;
- ``active``: bool [k, A] after the step (for a reset env: its new episode's, all True except the
  padding slots of mixed agent counts, ``envs.mixed``).

Two implementations, chosen by :func:`make_vector_env`:

- a **batched** one registered for an env name (:func:`register_vector_env`; the Bottleneck's:
  :class:`envs.bottleneck_vec.BottleneckVector`, the Cue tasks': :class:`envs.cue_vec.CueVector`)
  that keeps the state of all ``k`` envs in arrays;
- :class:`LoopVectorEnv`, the fallback for every other env (and every config the batched one does not
  support): ``k`` :class:`envs.base.MultiAgentEnv` instances stepped in turn. It is also the reference
  the batched ones are tested against (``tests/test_envs_vector.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from envs.base import MultiAgentEnv
from envs.config import EnvConfig

StepResult = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, list]


class VectorEnv(Protocol):
    num_envs: int
    num_agents: int
    """agents per env (A)"""
    observation_space: Any
    action_space: Any
    binary_observations: bool
    obs_dtype: Any

    @property
    def active(self) -> np.ndarray: ...

    def reset(self) -> np.ndarray: ...

    def step(self, actions: np.ndarray) -> StepResult: ...

    def close(self) -> None: ...


class LoopVectorEnv:
    """``k`` single envs stepped one after the other (the generic fallback and the test reference)."""

    def __init__(self, envs: Sequence[MultiAgentEnv], seeds: Sequence[int | None] | None = None) -> None:
        if not envs:
            raise ValueError("a vector env needs at least one environment")
        self.envs = list(envs)
        self.num_envs = len(self.envs)
        self.num_agents = int(self.envs[0].num_agents)
        if any(int(e.num_agents) != self.num_agents for e in self.envs):
            raise ValueError("all environments of one vector env must have the same number of agents")
        if seeds is not None and len(seeds) != self.num_envs:
            raise ValueError(
                f"got {len(seeds)} seeds for {self.num_envs} environments; give one per environment"
            )
        self.observation_space = self.envs[0].observation_space
        self.action_space = self.envs[0].action_space
        self.binary_observations = all(getattr(e, "binary_observations", False) for e in self.envs)
        self.obs_dtype = self.observation_space.dtype
        # seeds go to each env's first reset only; later resets continue the env's own random stream
        self._seeds: list[int | None] = list(seeds) if seeds is not None else [None] * self.num_envs
        self._obs: list[np.ndarray] = [np.empty(0)] * self.num_envs
        self._active = np.ones((self.num_envs, self.num_agents), dtype=bool)
        self._started = False

    @property
    def active(self) -> np.ndarray:
        return self._active.copy()

    def reset(self) -> np.ndarray:
        for i, env in enumerate(self.envs):
            self._obs[i], _ = env.reset(seed=self._seeds[i])
            self._seeds[i] = None
            self._active[i] = env.active
        self._started = True
        return np.concatenate(self._obs, axis=0)

    def step(self, actions: np.ndarray) -> StepResult:
        if not self._started:
            raise RuntimeError("call reset() before step()")
        k, A = self.num_envs, self.num_agents
        actions = check_vector_actions(actions, k, A, self.action_space.n, validate=False)
        rewards = np.zeros((k, A), dtype=np.float32)
        terminated = np.zeros((k, A), dtype=bool)
        truncated = np.zeros((k, A), dtype=bool)
        ended = np.zeros(k, dtype=bool)
        metrics: list[dict | None] = [None] * k
        for i, env in enumerate(self.envs):
            was_active = self._active[i].copy()
            obs, rew, term, trunc, infos = env.step(actions[i])
            # an agent that had already left the episode earns nothing
            rewards[i] = np.where(was_active, rew, 0.0)
            terminated[i], truncated[i] = term, trunc
            if np.all(np.asarray(term) | np.asarray(trunc)):
                ended[i] = True
                metrics[i] = dict(infos[0].get("metrics", {})) if infos else {}
                obs, _ = env.reset()
            self._obs[i] = obs
            self._active[i] = env.active
        return np.concatenate(self._obs, axis=0), rewards, terminated, truncated, ended, metrics

    def close(self) -> None:
        for env in self.envs:
            close = getattr(env, "close", None)
            if close is not None:
                close()


def check_vector_actions(
    actions: object, num_envs: int, num_agents: int, num_actions: int, validate: bool = True
) -> np.ndarray:
    """``actions`` [k*A] or [k, A] as int64 [k, A]; with ``validate`` the values too (one-line ValueError)."""
    a = np.asarray(actions)
    k, A = num_envs, num_agents
    if a.shape == (k * A,):
        a = a.reshape(k, A)
    elif a.shape != (k, A):
        raise ValueError(
            f"actions must have shape ({k * A},) or ({k}, {A}) for {k} envs x {A} agents, got {a.shape}"
        )
    if not validate:
        return a
    if a.dtype.kind == "f" and np.all(a == np.round(a)):
        a = a.astype(np.int64)  # integral floats from generic samplers
    elif a.dtype.kind not in "iu":
        raise ValueError(f"actions must be integers 0..{num_actions - 1}, got dtype {a.dtype}")
    a = a.astype(np.int64, copy=False)
    if np.count_nonzero(a.view(np.uint64) >= num_actions):  # negative values become huge as unsigned
        bad = a[(a < 0) | (a >= num_actions)][0]
        raise ValueError(
            f"action {bad} is out of range; allowed: 0..{num_actions - 1} (wait, up, down, left, right)"
        )
    return a


VectorBuilder = Callable[[EnvConfig, Sequence["int | None"], Any], "VectorEnv | None"]
_VECTOR_BUILDERS: dict[str, VectorBuilder] = {}


def register_vector_env(name: str, builder: VectorBuilder) -> None:
    """A batched implementation for env ``name``: ``builder(cfg, seeds, obs_dtype)`` returns a
    :class:`VectorEnv` of ``len(seeds)`` envs, or None for a config it does not support (then
    :func:`make_vector_env` falls back to :class:`LoopVectorEnv`)."""
    if not callable(builder):
        raise ValueError(f"vector builder for env {name!r} must be callable(cfg, seeds, obs_dtype)")
    _VECTOR_BUILDERS[name] = builder


def make_vector_env(
    cfg: EnvConfig, seeds: Sequence[int | None], obs_dtype: Any = np.float32, batched: bool = True
) -> VectorEnv:
    """``len(seeds)`` envs of ``cfg`` as one :class:`VectorEnv`: the registered batched implementation
    where there is one that supports ``cfg`` (and ``batched``), else a loop over ``make_env``.

    ``obs_dtype`` is a hint (``uint8`` for binary observations): a batched env builds its observations
    in it directly; the loop keeps the envs' own dtype (check ``obs_dtype`` of the result).
    """
    from envs.registry import make_env

    seeds = list(seeds)
    if not seeds:
        raise ValueError("a vector env needs at least one environment (got no seeds)")
    # mixed agent counts pad each env to max(choices) slots (envs.mixed); the batched implementations
    # keep one fixed count, so such configs take the loop
    builder = _VECTOR_BUILDERS.get(cfg.name) if batched and not cfg.num_agents_choices else None
    if builder is not None:
        vec = builder(cfg, seeds, np.dtype(obs_dtype))
        if vec is not None:
            return vec
    return LoopVectorEnv([make_env(cfg, seed=s) for s in seeds])
